/* SPDX-License-Identifier: MIT */
/*
 * PEM text without GnuTLS: finding the blocks of a certificate text or a
 * key text, refusing what does not belong there with a reason, and the
 * normal form certd stores.  No I/O and no decoding: cert.c hands the
 * blocks found here to GnuTLS.
 */
#ifndef CERTD_PEM_H
#define CERTD_PEM_H

#include <stddef.h>

/*
 * One PEM block inside a caller's buffer.  Nothing is owned: every pointer
 * points into the text that was scanned.
 */
struct pem_block {
	const char	*label;		/* not NUL-terminated */
	size_t		 label_len;
	const char	*start;		/* at "-----BEGIN " */
	size_t		 len;		/* up to the end of the END marker */
	const char	*body;		/* after the BEGIN line, up to "-----END " */
	size_t		 body_len;
};

/* Longest reason the functions below write, NUL included. */
#define PEM_WHY_MAX	400

/*
 * The blocks of a certificate text (len bytes, need not be
 * NUL-terminated, at most CERTD_CERT_MAX): CERTIFICATE blocks only, at
 * most CERTD_CHAIN_MAX, with explanatory text around them (RFC 7468
 * section 2) skipped unless it looks like part of a damaged block.
 * Returns 0 with v[0..*n), which point into text, or
 * CERTD_ERR_CERT_INVALID with why (NULL, or whylen bytes) naming the line
 * or block and the check.
 */
int	pem_chain_blocks(const char *text, size_t len, struct pem_block *v,
	    unsigned *n, char *why, size_t whylen);

/*
 * The private key block of a key text (at most CERTD_KEY_MAX): exactly one
 * unencrypted RSA, EC or PKCS#8 block, with explanatory text around it,
 * after an optional EC PARAMETERS block (what `openssl ecparam -genkey`
 * writes; OpenSSL and GnuTLS skip it when they read the key, and the curve
 * is in the key too).  Returns 0 with *b pointing into text, or
 * CERTD_ERR_KEY_INVALID and why (which never holds anything of the key but
 * its label).
 */
int	pem_key_block(const char *text, size_t len, struct pem_block *b,
	    char *why, size_t whylen);

/* What pem_normalize reads. */
#define PEM_CHAIN	0	/* certificate text: CERTIFICATE blocks */
#define PEM_KEY		1	/* key text: one private key block */

/*
 * The normal form of a certificate or key text, as certd stores it: its
 * blocks only (for a key, the private key block alone, without an EC
 * PARAMETERS block before it), each as "-----BEGIN L-----\n", its base64
 * in lines of 64 ending in LF, "-----END L-----\n".  The text must pass
 * pem_chain_blocks or pem_key_block (cert_check's reading of the blocks,
 * not its X.509 or key checks): else CERTD_ERR_CERT_INVALID or
 * CERTD_ERR_KEY_INVALID with why, also when the normal form is over
 * CERTD_CERT_MAX or CERTD_KEY_MAX.  Returns 0 with *out NULL when the text
 * is in normal form already, else *out (malloc'd, NUL-terminated, *outlen
 * bytes; for a key the caller wipes it); or CERTD_ERR_NOMEM.
 */
int	pem_normalize(const char *text, size_t len, int kind, char **out,
	    size_t *outlen, char *why, size_t whylen);

#endif
