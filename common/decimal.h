/* Decimal integers from text: the one parser lbd, lbctl, lbd-track, the
 * state file and the config readers share, so "12", "-3" and what is
 * refused ("", " 1", "+1", "1x", "0x10", out of range) mean the same
 * everywhere. */
#ifndef MS_DECIMAL_H
#define MS_DECIMAL_H

/* Parses the whole of s as a decimal integer in [min, max]: digits, with
 * a leading '-' only when min < 0; no blanks, no '+', no other base.
 * Returns 0 with *out set, or -1 (s NULL, not such a number, or out of
 * range) with *out untouched. */
int decimal_long(const char *s, long min, long max, long *out);

/* The same for an unsigned value in [0, max] (a version counter). */
int decimal_ullong(const char *s, unsigned long long max,
		   unsigned long long *out);

#endif
