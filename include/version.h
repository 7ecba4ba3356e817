#ifndef STAMPD_VERSION_H
#define STAMPD_VERSION_H
#define STAMPD_VERSION "0.1.0"
#endif
