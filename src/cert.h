/* SPDX-License-Identifier: MIT */
/*
 * Certificate and private key validation with GnuTLS.  No I/O: text in,
 * verdict and metadata out.  Certificates and keys meet GnuTLS here and
 * nowhere else: validation, the key pairs that TLS serves (the daemon's
 * listener and libcertd's reloader load theirs with cert_pair_new), hashing
 * and random bytes for tokens, and the AEAD that seals private keys at
 * rest.  The TLS sessions themselves are run by their own rooms, which
 * call gnutls_* for that: http_conn.c (the listener), reloader.c
 * (libcertd) and tlsprobe.c (certctl).  Built into libcertd_common.
 */
#ifndef CERTD_CERT_H
#define CERTD_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "certd/constants.h"
#include "util.h"

/* GnuTLS's types, for the few functions below that hand them over. */
struct gnutls_certificate_credentials_st;
struct gnutls_pcert_st;
struct gnutls_privkey_st;

#define CERT_FINGERPRINT_LEN	64	/* lowercase hex of SHA-256 */

/* Sealing: AES-256-GCM, a random 96-bit nonce per box, a 128-bit tag. */
#define CERT_SEAL_KEY_LEN	32
#define CERT_SEAL_NONCE_LEN	12
#define CERT_SEAL_TAG_LEN	16
#define CERT_SEAL_OVERHEAD	(CERT_SEAL_NONCE_LEN + CERT_SEAL_TAG_LEN)

/*
 * What certd extracts from a validated certificate chain.  All strings are
 * NUL-terminated and owned by the struct; cert_meta_clear() frees them.
 */
struct cert_meta {
	char	 *subject_cn;		/* leaf subject CN, NULL when absent */
	char	**sans;			/* leaf DNS and IP SANs, as text, in certificate order */
	size_t	  n_sans;
	char	 *issuer_cn;		/* leaf issuer CN, NULL when absent */
	char	 *issuer_dn;		/* leaf issuer DN, RFC 4514 text */
	char	 *serial;		/* leaf serial, lowercase hex, no separators */
	int64_t	  not_before;		/* leaf validity, Unix seconds */
	int64_t	  not_after;
	char	  fingerprint[CERT_FINGERPRINT_LEN + 1];	/* SHA-256 of leaf DER */
	char	 *key_algorithm;	/* "RSA", "ECDSA", "Ed25519", "Ed448" */
	unsigned  key_bits;
	unsigned  chain_len;		/* number of certificates, leaf included */
};

/* Longest reason cert_check writes, NUL included (PEM_WHY_MAX fits). */
#define CERT_WHY_MAX	400

/*
 * Validate a certificate chain (PEM, leaf first) against a private key (PEM)
 * at time `now`.  Checks run in this order and the first failure is returned:
 *   CERTD_ERR_CERT_INVALID   certificate text does not parse, or holds any
 *                            block but CERTIFICATE blocks, or is over
 *                            CERTD_CERT_MAX
 *   CERTD_ERR_CERT_EXPIRED   leaf notAfter < now
 *   CERTD_ERR_CERT_NOT_YET   leaf notBefore > now
 *   CERTD_ERR_KEY_INVALID    key does not parse, is encrypted, is over
 *                            CERTD_KEY_MAX, or is RSA over CERTD_RSA_BITS_MAX
 *   CERTD_ERR_KEY_MISMATCH   key's public key is not the leaf's; but when it
 *                            is a later certificate's and the chain does not
 *                            hold as given (a leaf given last),
 *                            CERTD_ERR_CHAIN_INVALID
 *   CERTD_ERR_CHAIN_INVALID  link i not issued and signed by link i+1, or
 *                            link i+1's key not RSA of at most
 *                            CERTD_RSA_BITS_MAX bits with an exponent of at
 *                            most 64 bits, EC or EdDSA
 * Explanatory text around the blocks (RFC 7468 section 2: what `openssl
 * pkcs12 -nodes` writes) is skipped, unless it looks like part of a damaged
 * block.  Inputs need not be NUL-terminated.  On success fills *meta (which
 * the caller clears); on failure *meta is left cleared and why (NULL, or
 * whylen bytes, CERT_WHY_MAX is enough) says which certificate or line, and
 * which check: printable UTF-8, never key text.  Key material copied
 * internally is wiped before return.  Returns 0 or a negative CERTD_ERR_*;
 * CERTD_ERR_NOMEM on allocation failure.
 */
int	cert_check(const char *cert, size_t cert_len, const char *key,
	    size_t key_len, int64_t now, struct cert_meta *meta, char *why,
	    size_t whylen);

/*
 * The reason cert_check gives for CERTD_ERR_CERT_EXPIRED or
 * CERTD_ERR_CERT_NOT_YET of a leaf whose metadata is m.
 */
void	cert_time_why(int err, const struct cert_meta *m, char *why,
	    size_t whylen);

/* Free what a cert_meta owns and zero it.  Accepts a zeroed struct. */
void	cert_meta_clear(struct cert_meta *meta);

/* Deep copy; returns 0 or CERTD_ERR_NOMEM (dst left cleared). */
int	cert_meta_copy(struct cert_meta *dst, const struct cert_meta *src);

/* SHA-256 of data into out[32].  Returns 0 or CERTD_ERR_INTERNAL. */
int	cert_sha256(const void *data, size_t len, unsigned char out[32]);

/*
 * The SHA-256 fingerprint, lowercase hex as cert_meta has it, of the first
 * CERTIFICATE block of PEM text (at most CERTD_CERT_MAX bytes; need not be
 * NUL-terminated): the leaf that certctl sync writes, to compare with the
 * leaf a server presents.  Returns 0, CERTD_ERR_CERT_INVALID when there is
 * no such block that parses, or CERTD_ERR_NOMEM.
 */
int	cert_fingerprint_pem(const char *pem, size_t len,
	    char out[CERT_FINGERPRINT_LEN + 1]);

/* The same of one DER certificate, as a TLS handshake hands it over. */
int	cert_fingerprint_der(const void *der, size_t len,
	    char out[CERT_FINGERPRINT_LEN + 1]);

/* Cryptographically strong random bytes.  Returns 0 or CERTD_ERR_INTERNAL. */
int	cert_random(void *buf, size_t len);

/*
 * Seal len bytes of `in` under key with AES-256-GCM: a fresh random nonce,
 * `aad` authenticated but not stored.  *out (malloc'd, len +
 * CERT_SEAL_OVERHEAD bytes in *outlen) is nonce | ciphertext | tag; the
 * caller wipes and frees it.  Returns 0, CERTD_ERR_NOMEM or
 * CERTD_ERR_INTERNAL.
 */
int	cert_seal(const unsigned char key[CERT_SEAL_KEY_LEN], const void *aad,
	    size_t aadlen, const void *in, size_t len, unsigned char **out,
	    size_t *outlen);

/*
 * Open a box cert_seal made with the same key and aad.  *out is the
 * plaintext, malloc'd and NUL-terminated (not counted in *outlen); the
 * caller wipes and frees it.  Returns 0, CERTD_ERR_STORAGE when the box is
 * malformed or does not authenticate (wrong key, wrong aad, altered bytes;
 * nothing is returned then), CERTD_ERR_NOMEM or CERTD_ERR_INTERNAL.
 */
int	cert_unseal(const unsigned char key[CERT_SEAL_KEY_LEN],
	    const void *aad, size_t aadlen, const void *in, size_t len,
	    char **out, size_t *outlen);

/*
 * A certificate chain and its private key, parsed for TLS: immutable, so
 * that any thread may copy from it.
 */
struct cert_pair;

/*
 * Parse a PEM chain (cert_len bytes, leaf first; put in order, and
 * certificates that are not part of the chain dropped, as GnuTLS sorts a
 * chain for its credentials; 1 to CERTD_CHAIN_MAX certificates) and its
 * PEM private key (read with no password).  The key must be the leaf's, and the
 * pair must copy as cert_pair_copy copies it for each handshake.  The key
 * text stays the caller's to wipe.  NULL with the reason in why (whylen
 * bytes; CERT_WHY_MAX is enough).
 */
struct cert_pair *cert_pair_new(const char *cert, size_t cert_len,
		    const char *key, size_t key_len, char *why, size_t whylen);

/* Accepts NULL.  GnuTLS wipes the key's numbers. */
void		 cert_pair_free(struct cert_pair *p);

/*
 * A copy of p for one TLS handshake, allocated the way GnuTLS frees it
 * after a certificate retrieve callback that sets
 * GNUTLS_CERT_RETR_DEINIT_ALL: *certs (*ncerts of them, leaf first) and
 * *key.  Copies parsed objects: nothing is parsed per handshake.  Returns
 * 0, CERTD_ERR_NOMEM or CERTD_ERR_INTERNAL.
 */
int		 cert_pair_copy(const struct cert_pair *p,
		    struct gnutls_pcert_st **certs, unsigned *ncerts,
		    struct gnutls_privkey_st **key);

/*
 * Add a copy of p to cred, the certificate credentials of a TLS server.
 * Returns 0, CERTD_ERR_NOMEM or CERTD_ERR_INTERNAL.
 */
int		 cert_pair_credentials(const struct cert_pair *p,
		    struct gnutls_certificate_credentials_st *cred);

#endif
