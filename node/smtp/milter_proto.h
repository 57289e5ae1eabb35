/* The Sendmail milter protocol, version 6, as Postfix speaks it (the
 * MTA's side): packets are a 4-byte length in network order (the command
 * byte included), a command byte, then its data. This file is pure:
 * building the MTA's packets into a buffer and reading the milter's; no
 * sockets (milter.c owns those). */
#ifndef NODE_MILTER_PROTO_H
#define NODE_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/strbuf.h"

#define MILTER_VERSION 6
#define MILTER_CHUNK_MAX 65535	    /* body bytes per SMFIC_BODY */
#define MILTER_PACKET_MAX (1 << 20) /* longest answer taken */

/* The MTA's commands (SMFIC_*). */
enum {
	MILTER_C_ABORT = 'A',
	MILTER_C_BODY = 'B',
	MILTER_C_CONNECT = 'C',
	MILTER_C_MACRO = 'D',
	MILTER_C_EOB = 'E',
	MILTER_C_HELO = 'H',
	MILTER_C_HEADER = 'L',
	MILTER_C_MAIL = 'M',
	MILTER_C_EOH = 'N',
	MILTER_C_OPTNEG = 'O',
	MILTER_C_QUIT = 'Q',
	MILTER_C_RCPT = 'R',
	MILTER_C_DATA = 'T',
};

/* The milter's answers (SMFIR_*). */
enum {
	MILTER_R_ADDRCPT = '+',
	MILTER_R_DELRCPT = '-',
	MILTER_R_OPTNEG = 'O',
	MILTER_R_ACCEPT = 'a',
	MILTER_R_REPLBODY = 'b',
	MILTER_R_CONTINUE = 'c',
	MILTER_R_DISCARD = 'd',
	MILTER_R_CHGFROM = 'e',
	MILTER_R_ADDHEADER = 'h',
	MILTER_R_INSHEADER = 'i',
	MILTER_R_SETSYMLIST = 'l',
	MILTER_R_CHGHEADER = 'm',
	MILTER_R_PROGRESS = 'p',
	MILTER_R_QUARANTINE = 'q',
	MILTER_R_REJECT = 'r',
	MILTER_R_SKIP = 's',
	MILTER_R_TEMPFAIL = 't',
	MILTER_R_REPLYCODE = 'y',
};

/* Actions a milter may take (SMFIF_*): what we offer at OPTNEG. */
#define MILTER_F_ADDHDRS 0x01
#define MILTER_F_CHGBODY 0x02
#define MILTER_F_CHGHDRS 0x10
#define MILTER_F_QUARANTINE 0x20
#define MILTER_F_OFFERED                                                       \
	(MILTER_F_ADDHDRS | MILTER_F_CHGBODY | MILTER_F_CHGHDRS |              \
	 MILTER_F_QUARANTINE)

/* Protocol steps a milter may leave out or not answer (SMFIP_*). */
#define MILTER_P_NOCONNECT 0x01
#define MILTER_P_NOHELO 0x02
#define MILTER_P_NOMAIL 0x04
#define MILTER_P_NORCPT 0x08
#define MILTER_P_NOBODY 0x10
#define MILTER_P_NOHDRS 0x20
#define MILTER_P_NOEOH 0x40
#define MILTER_P_NR_HDR 0x80
#define MILTER_P_NOUNKNOWN 0x100
#define MILTER_P_NODATA 0x200
#define MILTER_P_SKIP 0x400
#define MILTER_P_RCPT_REJ 0x800
#define MILTER_P_NR_CONN 0x1000
#define MILTER_P_NR_HELO 0x2000
#define MILTER_P_NR_MAIL 0x4000
#define MILTER_P_NR_RCPT 0x8000
#define MILTER_P_NR_DATA 0x10000
#define MILTER_P_NR_UNKN 0x20000
#define MILTER_P_NR_EOH 0x40000
#define MILTER_P_NR_BODY 0x80000
#define MILTER_P_HDR_LEADSPC 0x100000
#define MILTER_P_OFFERED 0x1fffff /* every step above may be declined */

/* One answer of the milter, pointing into the caller's buffer. */
struct milter_packet {
	char cmd;
	const char *data; /* len bytes (not NUL-terminated in general) */
	size_t len;
};

/* Reads one packet from buf[0..len). Returns the bytes it takes (> 0)
 * with *p set, 0 when more bytes are needed, or -1 for a packet that is
 * empty or longer than MILTER_PACKET_MAX. */
long milter_packet_read(const char *buf, size_t len, struct milter_packet *p);

/* The fields of answers that carry them. Each returns 0, or -1 when the
 * data is malformed (strings not NUL-terminated, too short). */
/* SMFIR_OPTNEG: the version, actions and steps the milter chose. */
int milter_optneg_parse(const struct milter_packet *p, uint32_t *version,
			uint32_t *actions, uint32_t *steps);
/* SMFIR_ADDHEADER (index 0), SMFIR_INSHEADER and SMFIR_CHGHEADER: the
 * index (1-based occurrence for CHGHEADER, position for INSHEADER), the
 * header's name and value (NUL-terminated, in the packet). A name must be
 * a field name (printable ASCII but ':'); a line break in the value only
 * folds (LF or CRLF, then a space or tab). */
int milter_header_parse(const struct milter_packet *p, uint32_t *index,
			const char **name, const char **value);
/* SMFIR_REPLYCODE: "4xx ..." or "5xx ..." text, checked: three digits,
 * first 4 or 5, then a space or the end; one line (no CR, LF). */
int milter_reply_parse(const struct milter_packet *p, const char **text);
/* SMFIR_QUARANTINE: the reason (may be empty). */
int milter_string_parse(const struct milter_packet *p, const char **s);

/* Appends one MTA packet: cmd and the concatenation of n parts (strings
 * are given with their NUL when the protocol wants it). Returns 0 or -1
 * (the buffer's cap). */
int milter_put(struct strbuf *out, char cmd, const void *data, size_t len);
/* SMFIC_OPTNEG offering version 6, MILTER_F_OFFERED and MILTER_P_OFFERED. */
int milter_put_optneg(struct strbuf *out);
/* SMFIC_MACRO for the step `step` (a command byte): names[i] = values[i]
 * for i < n, empty values left out. */
int milter_put_macros(struct strbuf *out, char step, const char *const *names,
		      const char *const *values, size_t n);
/* A command whose data is NUL-terminated strings: s[0]\0 s[1]\0 ... */
int milter_put_strings(struct strbuf *out, char cmd, const char *const *s,
		       size_t n);
/* SMFIC_HEADER: the name (namelen bytes) and the value. */
int milter_put_header(struct strbuf *out, const char *name, size_t namelen,
		      const char *value);
/* SMFIC_CONNECT: the client's name, its family ('4', '6' or 'U'), port
 * and address. */
int milter_put_connect(struct strbuf *out, const char *name, char family,
		       uint16_t port, const char *addr);

#endif
