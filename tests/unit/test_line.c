/*
 * test_line.c - the line framer (src/line.c) against the protocol's
 * "Requests" and "Errors and limits" rules, and against a trivial reference
 * splitter on random streams.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "line.h"

/* --- a recording sink ---------------------------------------------------- */

#define REC_BYTES (1u << 18)
#define REC_LINES 8192

struct rec {
    char bytes[REC_BYTES];   /* payloads back to back */
    size_t used;
    size_t off[REC_LINES], len[REC_LINES];
    int crlf[REC_LINES];
    size_t n;                /* lines accepted */
    size_t calls;            /* sink invocations, including refused ones */
    size_t pause_at;         /* return LINE_PAUSE on this call number (1-based) */
    size_t fail_at;          /* return LINE_FAIL on this call number */
    unsigned pause_every;    /* if non-zero: pause at random, about once
                                in pause_every calls */
    uint64_t rng;
};

static int rec_sink(void *ctx, const char *payload, size_t len, int crlf)
{
    struct rec *r = ctx;

    r->calls++;
    if (r->fail_at && r->calls == r->fail_at)
        return LINE_FAIL;
    assert_true(r->n < REC_LINES);
    assert_true(r->used + len <= REC_BYTES);
    memcpy(r->bytes + r->used, payload, len);
    r->off[r->n] = r->used;
    r->len[r->n] = len;
    r->crlf[r->n] = crlf;
    r->used += len;
    r->n++;
    if (r->pause_at && r->calls == r->pause_at)
        return LINE_PAUSE;
    if (r->pause_every && unit_rand(&r->rng) % r->pause_every == 0)
        return LINE_PAUSE;
    return LINE_OK;
}

static struct rec *rec_new(void)
{
    struct rec *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    return r;
}

static void assert_line(const struct rec *r, size_t i, const char *payload,
                        size_t len, int crlf)
{
    assert_true(i < r->n);
    assert_int_equal(r->len[i], len);
    assert_memory_equal(r->bytes + r->off[i], payload, len);
    assert_int_equal(r->crlf[i], crlf);
}

#define LINE(r, i, lit, crlf) assert_line((r), (i), (lit), sizeof(lit) - 1, (crlf))

static int feed(struct line_buf *lb, const char *s, size_t n, size_t max,
                struct rec *r, size_t *consumed, size_t *lines)
{
    return line_feed(lb, s, n, max, rec_sink, r, consumed, lines);
}

/* --- basic framing ------------------------------------------------------- */

static void test_basic_terminators(void **state)
{
    (void)state;
    static const char in[] = "a\nbc\r\n\n\r\nlast";
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t consumed = 99, lines = 99;

    assert_int_equal(feed(&lb, in, sizeof(in) - 1, 64, r, &consumed, &lines), LINE_OK);
    assert_int_equal(consumed, sizeof(in) - 1);
    assert_int_equal(lines, 4);
    assert_int_equal(r->n, 4);
    LINE(r, 0, "a", 0);
    LINE(r, 1, "bc", 1);
    LINE(r, 2, "", 0);      /* an empty payload is a request */
    LINE(r, 3, "", 1);
    /* The unterminated tail is held, and only it. */
    assert_int_equal(lb.len, 4);
    assert_memory_equal(lb.buf, "last", 4);

    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
    assert_int_equal(r->n, 5);
    LINE(r, 4, "last", 0);
    assert_null(lb.buf);
    assert_int_equal(lb.len, 0);
    assert_int_equal(lb.cap, 0);

    /* A read that starts with LF: the byte before the read (here a CR the
     * framer must not look at) is not part of the line. */
    static const char cr_lf[] = "\r\n";
    assert_int_equal(feed(&lb, cr_lf + 1, 1, 64, r, NULL, NULL), LINE_OK);
    LINE(r, 5, "", 0);
    free(r);
}

static void test_binary_payloads(void **state)
{
    (void)state;
    /* NUL, 0xFF, lone CR inside, CR CR LF, invalid UTF-8, control bytes. */
    static const char in[] = "a\0b\n\xff\xfe\n" "x\ry\n" "\r\r\n" "\r\n"
                             "\xc3\x28\x01\x7f\n" "\0\n";
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t consumed, lines;

    assert_int_equal(feed(&lb, in, sizeof(in) - 1, 64, r, &consumed, &lines), LINE_OK);
    assert_int_equal(lines, 7);
    LINE(r, 0, "a\0b", 0);
    LINE(r, 1, "\xff\xfe", 0);
    LINE(r, 2, "x\ry", 0);           /* a lone CR is payload */
    LINE(r, 3, "\r", 1);             /* only the CR right before LF terminates */
    LINE(r, 4, "", 1);
    LINE(r, 5, "\xc3\x28\x01\x7f", 0);
    LINE(r, 6, "\0", 0);
    assert_null(lb.buf);
    free(r);
}

static void test_empty_feed(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t consumed = 7, lines = 7;

    assert_int_equal(feed(&lb, "", 0, 64, r, &consumed, &lines), LINE_OK);
    assert_int_equal(consumed, 0);
    assert_int_equal(lines, 0);
    assert_null(lb.buf);
    /* With a fragment held, an empty read changes nothing. */
    assert_int_equal(feed(&lb, "ab", 2, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "", 0, 64, r, &consumed, &lines), LINE_OK);
    assert_int_equal(consumed, 0);
    assert_int_equal(lb.len, 2);
    assert_int_equal(feed(&lb, "\n", 1, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(r->n, 1);
    LINE(r, 0, "ab", 0);
    free(r);
}

/* Every way of cutting a stream into two and into three reads gives the
 * same requests. */
static void test_split_every_position(void **state)
{
    (void)state;
    static const char in[] = "hello\r\nx\ry\n\n\r\n\0\xff\r\r\nend\r\n";
    const size_t n = sizeof(in) - 1;

    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct line_buf lb = { 0 };
            struct rec *r = rec_new();
            size_t total = 0, c;

            assert_int_equal(feed(&lb, in, i, 64, r, &c, NULL), LINE_OK);
            total += c;
            assert_int_equal(feed(&lb, in + i, j - i, 64, r, &c, NULL), LINE_OK);
            total += c;
            assert_int_equal(feed(&lb, in + j, n - j, 64, r, &c, NULL), LINE_OK);
            total += c;
            assert_int_equal(total, n);
            LINE(r, 0, "hello", 1);
            LINE(r, 1, "x\ry", 0);
            LINE(r, 2, "", 0);
            LINE(r, 3, "", 1);
            LINE(r, 4, "\0\xff\r", 1);
            LINE(r, 5, "end", 1);
            assert_int_equal(r->n, 6);
            assert_null(lb.buf);
            free(r);
        }
    }
}

static void test_drip_feed(void **state)
{
    (void)state;
    static const char in[] = "ab\r\ncd\n\r\n";
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();

    for (size_t i = 0; i < sizeof(in) - 1; i++) {
        size_t c;
        assert_int_equal(feed(&lb, in + i, 1, 64, r, &c, NULL), LINE_OK);
        assert_int_equal(c, 1);
    }
    assert_int_equal(r->n, 3);
    LINE(r, 0, "ab", 1);
    LINE(r, 1, "cd", 0);
    LINE(r, 2, "", 1);
    assert_null(lb.buf);
    free(r);
}

static void test_crlf_split(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c, lines;

    /* CR at the end of one read, LF at the start of the next. */
    assert_int_equal(feed(&lb, "abc\r", 4, 64, r, &c, &lines), LINE_OK);
    assert_int_equal(c, 4);
    assert_int_equal(lines, 0);
    assert_int_equal(r->n, 0);        /* not delivered as "abc" + lone CR */
    assert_int_equal(lb.len, 4);
    assert_int_equal(feed(&lb, "\ndef\n", 5, 64, r, &c, &lines), LINE_OK);
    assert_int_equal(c, 5);
    assert_int_equal(lines, 2);
    LINE(r, 0, "abc", 1);
    LINE(r, 1, "def", 0);

    /* A bare CR read alone, then LF: an empty CRLF request. */
    assert_int_equal(feed(&lb, "\r", 1, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "\n", 1, 64, r, NULL, NULL), LINE_OK);
    LINE(r, 2, "", 1);
    /* CR, then more payload: the CR stays payload. */
    assert_int_equal(feed(&lb, "q\r", 2, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "r\n", 2, 64, r, NULL, NULL), LINE_OK);
    LINE(r, 3, "q\rr", 0);
    assert_int_equal(r->n, 4);
    assert_null(lb.buf);
    free(r);
}

/* A held fragment is freed as soon as its line completes: between lines a
 * connection owns no input memory. */
static void test_no_memory_after_line(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();

    assert_int_equal(feed(&lb, "abc", 3, 64, r, NULL, NULL), LINE_OK);
    assert_non_null(lb.buf);
    assert_int_equal(feed(&lb, "def\n", 4, 64, r, NULL, NULL), LINE_OK);
    assert_null(lb.buf);
    assert_int_equal(lb.len, 0);
    assert_int_equal(lb.cap, 0);
    LINE(r, 0, "abcdef", 0);
    /* Completing a fragment and holding the next one in the same read:
     * only the new fragment is held. */
    assert_int_equal(feed(&lb, "gh", 2, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "i\njk", 4, 64, r, NULL, NULL), LINE_OK);
    LINE(r, 1, "ghi", 0);
    assert_int_equal(lb.len, 2);
    assert_memory_equal(lb.buf, "jk", 2);
    line_release(&lb);
    assert_null(lb.buf);
    free(r);
}

/* --- the limit ----------------------------------------------------------- */

static void test_max_line_exact(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c, lines;

    /* 8 bytes with the terminator: accepted, LF and CRLF alike. */
    assert_int_equal(feed(&lb, "1234567\n", 8, 8, r, &c, &lines), LINE_OK);
    assert_int_equal(c, 8);
    LINE(r, 0, "1234567", 0);
    assert_int_equal(feed(&lb, "123456\r\n", 8, 8, r, &c, &lines), LINE_OK);
    LINE(r, 1, "123456", 1);
    /* Split: held 4 + 4 = 8. */
    assert_int_equal(feed(&lb, "1234", 4, 8, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "567\n", 4, 8, r, &c, NULL), LINE_OK);
    assert_int_equal(c, 4);
    LINE(r, 2, "1234567", 0);
    /* A held 7 bytes (max - 1) plus LF is still fine. */
    assert_int_equal(feed(&lb, "1234567", 7, 8, r, &c, NULL), LINE_OK);
    assert_int_equal(c, 7);
    assert_int_equal(feed(&lb, "\n", 1, 8, r, NULL, NULL), LINE_OK);
    LINE(r, 3, "1234567", 0);
    /* max_line 1: only an empty LF request fits. */
    assert_int_equal(feed(&lb, "\n\n", 2, 1, r, &c, &lines), LINE_OK);
    assert_int_equal(lines, 2);
    LINE(r, 5, "", 0);
    assert_int_equal(feed(&lb, "\r\n", 2, 1, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 0);
    assert_int_equal(r->n, 6);
    line_release(&lb);
    free(r);
}

static void test_max_line_plus_one(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c = 99, lines = 99;

    /* 9 bytes with max 8: refused, nothing consumed, nothing delivered. */
    assert_int_equal(feed(&lb, "12345678\n", 9, 8, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 0);
    assert_int_equal(lines, 0);
    assert_int_equal(r->n, 0);
    line_release(&lb);

    /* After good lines in the same read: they are delivered, consumed
     * stops at the offending line's first byte. */
    assert_int_equal(feed(&lb, "ab\ncd\r\n1234567\r\nzz\n", 19, 8, r, &c, &lines),
                     LINE_TOO_LONG);
    assert_int_equal(c, 7);
    assert_int_equal(lines, 2);
    assert_int_equal(r->n, 2);
    LINE(r, 0, "ab", 0);
    LINE(r, 1, "cd", 1);
    line_release(&lb);

    /* Split across reads: 5 held + 4 = 9.  The line started in an earlier
     * read, so nothing of this one is consumed. */
    assert_int_equal(feed(&lb, "x\n12345", 7, 8, r, &c, NULL), LINE_OK);
    assert_int_equal(c, 7);
    assert_int_equal(feed(&lb, "678\nok\n", 7, 8, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 0);
    assert_int_equal(lines, 0);
    assert_int_equal(r->n, 3);
    LINE(r, 2, "x", 0);
    line_release(&lb);

    /* The default limit, with binary bytes: 65536 accepted, 65537 not. */
    size_t max = 65536;
    char *big = malloc(max + 1);
    assert_non_null(big);
    for (size_t i = 0; i < max; i++)
        big[i] = (char)(i % 251 == 10 ? 0 : i % 251);  /* never LF */
    big[max - 1] = '\n';
    assert_int_equal(feed(&lb, big, max, max, r, &c, &lines), LINE_OK);
    assert_int_equal(lines, 1);
    assert_line(r, 3, big, max - 1, 0);
    big[max - 1] = 'x';
    big[max] = '\n';
    assert_int_equal(feed(&lb, big, max + 1, max, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 0);
    assert_int_equal(r->n, 4);
    line_release(&lb);
    free(big);
    free(r);
}

/* The limit counts bytes that have arrived without an LF: a partial line
 * of max_line bytes is already too long, one byte less is held. */
static void test_partial_reaches_max(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c, lines;

    assert_int_equal(feed(&lb, "12345678", 8, 8, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 0);
    assert_null(lb.buf);
    line_release(&lb);

    assert_int_equal(feed(&lb, "ok\n12345678", 11, 8, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 3);
    assert_int_equal(lines, 1);
    LINE(r, 0, "ok", 0);
    line_release(&lb);

    /* Reached by accumulation: 7 held, then one more byte. */
    assert_int_equal(feed(&lb, "1234567", 7, 8, r, &c, NULL), LINE_OK);
    assert_int_equal(lb.len, 7);
    assert_int_equal(feed(&lb, "8", 1, 8, r, &c, &lines), LINE_TOO_LONG);
    assert_int_equal(c, 0);
    assert_int_equal(lines, 0);
    line_release(&lb);

    /* Accumulated in drips, CR last: 7 bytes are held, the 8th is refused
     * unless it is the LF. */
    for (int i = 0; i < 6; i++)
        assert_int_equal(feed(&lb, "a", 1, 8, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "\r", 1, 8, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "\n", 1, 8, r, &c, &lines), LINE_OK);
    assert_int_equal(lines, 1);
    LINE(r, 1, "aaaaaa", 1);
    assert_null(lb.buf);
    free(r);
}

/* --- back-pressure ------------------------------------------------------- */

static void test_pause(void **state)
{
    (void)state;
    static const char in[] = "a\nbb\r\nc\nd";
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c, lines;
    char *held;
    size_t hn;

    r->pause_at = 2;
    assert_int_equal(feed(&lb, in, sizeof(in) - 1, 64, r, &c, &lines), LINE_PAUSE);
    assert_int_equal(c, 6);         /* "a\n" + "bb\r\n": the pausing line counts */
    assert_int_equal(lines, 2);
    LINE(r, 0, "a", 0);
    LINE(r, 1, "bb", 1);
    assert_null(lb.buf);            /* no partial line held at a pause */

    /* The caller keeps the rest, unparsed. */
    assert_int_equal(line_stash(&lb, in + c, sizeof(in) - 1 - c), 0);
    assert_int_equal(lb.len, 3);
    assert_memory_equal(lb.buf, "c\nd", 3);
    line_take(&lb, &held, &hn);
    assert_null(lb.buf);
    assert_int_equal(lb.len, 0);
    assert_int_equal(lb.cap, 0);
    assert_int_equal(hn, 3);
    assert_memory_equal(held, "c\nd", 3);

    /* Fed again it frames the same as if there had been no pause. */
    assert_int_equal(feed(&lb, held, hn, 64, r, &c, &lines), LINE_OK);
    free(held);
    assert_int_equal(c, 3);
    assert_int_equal(lines, 1);
    LINE(r, 2, "c", 0);
    assert_int_equal(lb.len, 1);
    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
    LINE(r, 3, "d", 0);
    assert_int_equal(r->n, 4);

    /* An empty stash frees the buffer. */
    assert_int_equal(line_stash(&lb, "x", 1), 0);
    assert_int_equal(line_stash(&lb, "", 0), 0);
    assert_null(lb.buf);
    assert_int_equal(lb.len, 0);
    free(r);
}

/* Pausing on the line that completes a held fragment. */
static void test_pause_on_held_fragment(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c, lines;

    assert_int_equal(feed(&lb, "xy", 2, 64, r, NULL, NULL), LINE_OK);
    r->pause_at = 1;
    assert_int_equal(feed(&lb, "z\r\nnext\n", 8, 64, r, &c, &lines), LINE_PAUSE);
    assert_int_equal(c, 3);
    assert_int_equal(lines, 1);
    LINE(r, 0, "xyz", 1);
    assert_null(lb.buf);
    assert_int_equal(line_stash(&lb, "next\n", 5), 0);
    assert_int_equal(lb.len, 5);
    line_release(&lb);
    free(r);
}

static void test_sink_failure(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();
    size_t c, lines;

    r->fail_at = 2;
    assert_int_equal(feed(&lb, "a\nb\nc\n", 6, 64, r, &c, &lines), LINE_FAIL);
    assert_int_equal(r->calls, 2);  /* stopped at the failing line */
    assert_int_equal(lines, 1);     /* only the accepted one counts */
    assert_int_equal(r->n, 1);
    LINE(r, 0, "a", 0);
    line_release(&lb);

    /* line_finish passes the sink's failure on and still frees. */
    r->calls = 0;
    r->fail_at = 1;
    assert_int_equal(feed(&lb, "frag", 4, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_FAIL);
    assert_null(lb.buf);
    free(r);
}

/* --- end of input -------------------------------------------------------- */

static void test_finish(void **state)
{
    (void)state;
    struct line_buf lb = { 0 };
    struct rec *r = rec_new();

    /* Nothing held: nothing delivered. */
    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
    assert_int_equal(r->calls, 0);

    assert_int_equal(feed(&lb, "fr", 2, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(feed(&lb, "ag", 2, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
    LINE(r, 0, "frag", 0);
    assert_null(lb.buf);

    /* "A final fragment without a terminator is answered as a request
     * whose terminator is LF": a trailing CR was not a terminator, so it
     * stays in the payload and the reply ends in LF, not CRLF. */
    assert_int_equal(feed(&lb, "cr\r", 3, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
    LINE(r, 1, "cr\r", 0);
    assert_int_equal(feed(&lb, "\r", 1, 64, r, NULL, NULL), LINE_OK);
    assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
    LINE(r, 2, "\r", 0);
    assert_int_equal(r->n, 3);
    assert_null(lb.buf);
    assert_int_equal(lb.cap, 0);
    free(r);
}

/* --- randomised differential test ------------------------------------------
 *
 * The reference: split the whole stream at every LF; a line is too long
 * when it holds more than max bytes with its LF, a final fragment when it
 * holds max bytes or more.  The framer, fed the stream in random pieces and
 * paused at random (the caller then stashes, takes and refeeds the rest, as
 * the server does), must deliver exactly the reference's requests up to the
 * first overlong one and stop there. */

struct ref_line {
    size_t off, len;  /* payload within the stream */
    int crlf;
};

static size_t ref_split(const char *s, size_t n, size_t max, struct ref_line *out,
                        int *too_long, size_t *bad_off)
{
    size_t k = 0, start = 0;

    *too_long = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        size_t len = i + 1 - start;
        if (len > max) {
            *too_long = 1;
            *bad_off = start;
            return k;
        }
        int crlf = len >= 2 && s[i - 1] == '\r';
        out[k++] = (struct ref_line){ start, len - 1 - (size_t)crlf, crlf };
        start = i + 1;
    }
    if (start < n) {
        if (n - start >= max) {
            *too_long = 1;
            *bad_off = start;
            return k;
        }
        out[k++] = (struct ref_line){ start, n - start, 0 };
    }
    return k;
}

/* The differential tests' inputs: STREAMS random streams, each shorter
 * than MAXLEN, over an alphabet rich in LF and CR, with a random
 * --max-line of 1..24.  Fills s and returns its length. */
enum { STREAMS = 20000, MAXLEN = 160 };

static size_t random_stream(uint64_t *seed, char *s, size_t *max)
{
    static const char alphabet[] = { '\n', '\n', '\r', '\r', 'a', 'b', '\0', '\xff' };
    size_t n = unit_rand(seed) % MAXLEN;

    *max = 1 + unit_rand(seed) % 24;
    for (size_t i = 0; i < n; i++)
        s[i] = alphabet[unit_rand(seed) % sizeof(alphabet)];
    return n;
}

static void test_random_differential(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed1234abcdull;
    struct ref_line *ref = calloc(MAXLEN + 1, sizeof(*ref));
    struct rec *r = rec_new();
    char s[MAXLEN];

    assert_non_null(ref);
    for (int it = 0; it < STREAMS; it++) {
        size_t max;
        size_t n = random_stream(&seed, s, &max);
        int too_long, got_too_long = 0;
        size_t bad_off = 0, nref, fed = 0, total_consumed = 0;
        struct line_buf lb = { 0 };

        nref = ref_split(s, n, max, ref, &too_long, &bad_off);

        r->used = r->n = r->calls = 0;
        r->pause_at = r->fail_at = 0;
        r->pause_every = (it & 1) ? 3 : 0;
        r->rng = seed | 1;

        /* Feed in random pieces (1..8 bytes, sometimes empty). */
        while (fed < n && !got_too_long) {
            size_t piece = unit_rand(&seed) % 9;
            if (piece > n - fed)
                piece = n - fed;
            size_t c = 0, lines = 0, before = r->n;
            int rc = feed(&lb, s + fed, piece, max, r, &c, &lines);
            total_consumed += c;
            assert_int_equal(lines, r->n - before);
            if (rc == LINE_TOO_LONG) {
                got_too_long = 1;
                break;
            }
            /* Drain pauses the way the server does: stash the rest, take
             * it back and feed it again until it is all framed. */
            while (rc == LINE_PAUSE) {
                char *held;
                size_t hn, rest = piece - c;
                assert_null(lb.buf);
                assert_int_equal(line_stash(&lb, s + fed + c, rest), 0);
                line_take(&lb, &held, &hn);
                assert_int_equal(hn, rest);
                fed += c;
                piece = rest;
                before = r->n;
                rc = feed(&lb, held, hn, max, r, &c, &lines);
                free(held);
                total_consumed += c;
                assert_int_equal(lines, r->n - before);
            }
            if (rc == LINE_TOO_LONG) {
                got_too_long = 1;
                break;
            }
            assert_int_equal(rc, LINE_OK);
            assert_int_equal(c, piece);
            fed += piece;
        }
        if (!got_too_long) {
            r->pause_every = 0;
            assert_int_equal(line_finish(&lb, rec_sink, r), LINE_OK);
            assert_null(lb.buf);
        } else {
            /* Where the bad line began: what was consumed minus what is
             * still held of it. */
            assert_int_equal(total_consumed - lb.len, bad_off);
            line_release(&lb);
        }
        if (got_too_long != too_long)
            fail_msg("stream %d (n=%zu max=%zu): too_long %d, reference %d", it,
                     n, max, got_too_long, too_long);
        assert_int_equal(r->n, nref);
        for (size_t i = 0; i < nref; i++)
            assert_line(r, i, s + ref[i].off, ref[i].len, ref[i].crlf);
    }
    free(ref);
    free(r);
}

/* --- the stamp replies' fast path ------------------------------------------ */

/* A sink building stamp replies as the worker's reply_sink() does: the
 * prefix, the payload, CRLF or LF. */
struct stamp_out {
    char buf[4096];
    size_t len;
};

#define PFX "[Thu Sep 15 22:29:12 2016] "

static int stamp_sink(void *ctx, const char *payload, size_t len, int crlf)
{
    struct stamp_out *o = ctx;
    size_t plen = sizeof(PFX) - 1;
    memcpy(o->buf + o->len, PFX, plen);
    memcpy(o->buf + o->len + plen, payload, len);
    o->len += plen + len;
    if (crlf)
        o->buf[o->len++] = '\r';
    o->buf[o->len++] = '\n';
    return LINE_OK;
}

/* line_stamp_run() then line_feed() on the rest must give the bytes, line
 * count, held fragment and status of line_feed() alone, whatever the room;
 * and line_stamp_run() must stop only where the rules say. */
static void test_stamp_run_differential(void **state)
{
    (void)state;
    uint64_t seed = 0x57a3b5eedull;
    static struct stamp_out want, got;
    char s[MAXLEN];
    size_t plen = sizeof(PFX) - 1;

    for (int it = 0; it < STREAMS; it++) {
        size_t max;
        size_t n = random_stream(&seed, s, &max);
        size_t room = unit_rand(&seed) % 300;
        struct line_buf a = { 0 }, b = { 0 };
        size_t ca = 0, la = 0, cb = 0, lb_lines = 0, used = 0, fast = 0;

        want.len = got.len = 0;
        int ra = line_feed(&a, s, n, max, stamp_sink, &want, &ca, &la);

        got.len = line_stamp_run(s, n, max, PFX, plen, got.buf, room, &used, &fast);
        assert_true(got.len <= room);
        assert_true(used <= n);
        /* Where it stopped: the end, a fragment, a long line, or no room. */
        if (used < n) {
            const char *lf = memchr(s + used, '\n', n - used);
            size_t len = lf ? (size_t)(lf - (s + used)) + 1 : 0;
            assert_true(!lf || len > max || plen + len > room - got.len);
        }
        int rb = line_feed(&b, s + used, n - used, max, stamp_sink, &got, &cb,
                           &lb_lines);
        assert_int_equal(rb, ra);
        assert_int_equal(fast + lb_lines, la);
        if (ra == LINE_OK)
            assert_int_equal(used + cb, ca);
        assert_int_equal(got.len, want.len);
        assert_memory_equal(got.buf, want.buf, want.len);
        assert_int_equal(b.len, a.len);
        if (a.len)
            assert_memory_equal(b.buf, a.buf, a.len);
        line_release(&a);
        line_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_terminators),
        cmocka_unit_test(test_binary_payloads),
        cmocka_unit_test(test_empty_feed),
        cmocka_unit_test(test_split_every_position),
        cmocka_unit_test(test_drip_feed),
        cmocka_unit_test(test_crlf_split),
        cmocka_unit_test(test_no_memory_after_line),
        cmocka_unit_test(test_max_line_exact),
        cmocka_unit_test(test_max_line_plus_one),
        cmocka_unit_test(test_partial_reaches_max),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_pause_on_held_fragment),
        cmocka_unit_test(test_sink_failure),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_random_differential),
        cmocka_unit_test(test_stamp_run_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
