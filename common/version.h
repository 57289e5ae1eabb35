/* The version of mailswitch: one number, from CMake's project(VERSION). */
#ifndef MS_VERSION_H
#define MS_VERSION_H

/* "MAJOR.MINOR.PATCH", the same in every binary of one build. */
extern const char ms_version[];

#endif
