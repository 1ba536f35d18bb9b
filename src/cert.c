/* SPDX-License-Identifier: MIT */
/*
 * Certificate and private key validation with GnuTLS.
 *
 * Text comes in from a client, a verdict and metadata go out; there is no
 * I/O here.  pem.c finds the PEM blocks (and refuses any block that does
 * not belong, with explanatory text around them skipped), so that chain
 * order is ours to judge rather than something a sorting import quietly
 * repairs.  GnuTLS only ever gets exact, length-bounded slices of the
 * caller's buffers (its datums are not NUL-terminated), so cert_check
 * makes no copies of the key text and has nothing of it to wipe; the
 * private key object is released as soon as its public half has been
 * derived.  A refusal comes with a reason naming the certificate (its
 * position and CN) or line, and the check.  Chain links are checked
 * pairwise, each certificate against the next one as its only trusted
 * issuer, so a chain need not end at a root and the validity period of
 * issuers is not our business.
 *
 * Private keys at rest are sealed here too (cert_seal, cert_unseal): the
 * store decides what to seal under which key, this file only does the AEAD.
 *
 * And the key pairs that TLS serves are loaded here (cert_pair_new), once
 * for the daemon's listener (http_conn.c) and libcertd's reloader alike,
 * and copied for their credentials and handshakes.  Certificates and keys
 * meet GnuTLS in this file only; the TLS sessions are run by http_conn.c,
 * reloader.c and tlsprobe.c.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "certd/constants.h"
#include "cert.h"
#include "pem.h"
#include "util.h"

#define SERIAL_MAX	64	/* RFC 5280 says 20 octets; be lenient */
#define KEY_ID_MAX	64

/* cert_check hands its why to pem_chain_blocks and pem_key_block. */
_Static_assert(CERT_WHY_MAX >= PEM_WHY_MAX, "CERT_WHY_MAX < PEM_WHY_MAX");

/* Checks applied to every link, see chain_verify(). */
#define CHAIN_VERIFY_FLAGS						\
	(GNUTLS_VERIFY_DISABLE_TIME_CHECKS |				\
	 GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |			\
	 GNUTLS_VERIFY_ALLOW_X509_V1_CA_CRT |				\
	 GNUTLS_VERIFY_DO_NOT_ALLOW_SAME)

/* A parsed chain; crt[0] is the leaf, the first n entries are live. */
struct chain {
	gnutls_x509_crt_t	 crt[CERTD_CHAIN_MAX];
	unsigned		 n;
	unsigned char		 leaf_sha256[32];	/* of its DER, as given */
};

/* GnuTLS error to ours: out of memory is NOMEM, the rest is `bad'. */
static int
gtls_err(int ret, int bad)
{
	return ret == GNUTLS_E_MEMORY_ERROR ? CERTD_ERR_NOMEM : bad;
}

/*
 * Text we hand on (to JSON, to logs) must be printable UTF-8: reject C0
 * controls, DEL, NUL, overlong forms, surrogates and code points past
 * U+10FFFF.
 */
static int
text_ok(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	const unsigned char	*end = p + len;
	uint32_t		 cp, min;
	int			 more;

	while (p < end) {
		if (*p < 0x80) {
			if (*p < 0x20 || *p == 0x7f)
				return 0;
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			cp = *p & 0x1f;
			more = 1;
			min = 0x80;
		} else if ((*p & 0xf0) == 0xe0) {
			cp = *p & 0x0f;
			more = 2;
			min = 0x800;
		} else if ((*p & 0xf8) == 0xf0) {
			cp = *p & 0x07;
			more = 3;
			min = 0x10000;
		} else
			return 0;
		if (end - p <= more)
			return 0;
		for (p++; more > 0; more--, p++) {
			if ((*p & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (*p & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
	}
	return 1;
}

/*
 * NUL-terminated copy of [s, s + len), refused unless text_ok() (which
 * refuses NUL, so strndup copies all len bytes).
 */
static int
text_dup(const char *s, size_t len, char **out)
{
	*out = NULL;
	if (!text_ok(s, len))
		return CERTD_ERR_CERT_INVALID;
	if ((*out = strndup(s, len)) == NULL)
		return CERTD_ERR_NOMEM;
	return 0;
}

/* Both gnutls_x509_crt_get_dn_by_oid() and its issuer twin. */
typedef int (*dn_by_oid_fn)(gnutls_x509_crt_t, const char *, unsigned,
    unsigned, void *, size_t *);

/* First CN of a DN into *out, NULL when there is none. */
static int
dn_cn(gnutls_x509_crt_t crt, dn_by_oid_fn fn, char **out)
{
	char	*buf = NULL;
	size_t	 size = 0;
	int	 ret, rv;

	*out = NULL;
	ret = fn(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, NULL, &size);
	if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return 0;
	if (ret != GNUTLS_E_SHORT_MEMORY_BUFFER && ret < 0)
		return gtls_err(ret, CERTD_ERR_CERT_INVALID);
	if (size > CERTD_CERT_MAX)
		return CERTD_ERR_CERT_INVALID;
	if ((buf = malloc(size + 1)) == NULL)
		return CERTD_ERR_NOMEM;
	size++;
	if ((ret = fn(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf,
	    &size)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_CERT_INVALID);
		goto out;
	}
	rv = text_dup(buf, size, out);
out:
	free(buf);
	return rv;
}

/* Append one SAN to the list, growing it as needed. */
static int
sans_add(struct cert_meta *m, size_t *cap, char *s)
{
	char	**v;
	size_t	  ncap;

	if (m->n_sans == *cap) {
		ncap = *cap ? *cap * 2 : 4;
		if ((v = reallocarray(m->sans, ncap, sizeof(*v))) == NULL) {
			free(s);
			return CERTD_ERR_NOMEM;
		}
		m->sans = v;
		*cap = ncap;
	}
	m->sans[m->n_sans++] = s;
	return 0;
}

/* DNS and IP subject alternative names, in certificate order. */
static int
meta_sans(struct cert_meta *m, gnutls_x509_crt_t crt)
{
	char		 local[512], *buf = local, *big = NULL, *s;
	char		 ip[INET6_ADDRSTRLEN];
	size_t		 cap = 0, size;
	unsigned	 seq, type;
	int		 ret, rv = 0;

	for (seq = 0;; seq++) {
		size = sizeof(local);
		buf = local;
		ret = gnutls_x509_crt_get_subject_alt_name2(crt, seq, buf,
		    &size, &type, NULL);
		if (ret == GNUTLS_E_SHORT_MEMORY_BUFFER) {
			/* Longer than `local': a long URI or odd name. */
			free(big);
			big = NULL;
			if (size > CERTD_CERT_MAX) {
				rv = CERTD_ERR_CERT_INVALID;
				goto out;
			}
			if ((big = malloc(size + 1)) == NULL) {
				rv = CERTD_ERR_NOMEM;
				goto out;
			}
			buf = big;
			size++;
			ret = gnutls_x509_crt_get_subject_alt_name2(crt, seq,
			    buf, &size, &type, NULL);
		}
		if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (ret < 0) {
			rv = gtls_err(ret, CERTD_ERR_CERT_INVALID);
			goto out;
		}
		switch (type) {
		case GNUTLS_SAN_DNSNAME:
			if (size == 0) {
				rv = CERTD_ERR_CERT_INVALID;
				goto out;
			}
			if ((rv = text_dup(buf, size, &s)) != 0)
				goto out;
			break;
		case GNUTLS_SAN_IPADDRESS:
			if ((size != 4 && size != 16) ||
			    inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, ip,
			    sizeof(ip)) == NULL) {
				rv = CERTD_ERR_CERT_INVALID;
				goto out;
			}
			if ((s = strdup(ip)) == NULL) {
				rv = CERTD_ERR_NOMEM;
				goto out;
			}
			break;
		default:
			continue;
		}
		if ((rv = sans_add(m, &cap, s)) != 0)
			goto out;
	}
out:
	free(big);
	return rv;
}

static int
meta_issuer_dn(struct cert_meta *m, gnutls_x509_crt_t crt)
{
	gnutls_datum_t	 dn = { NULL, 0 };
	int		 ret, rv;

	ret = gnutls_x509_crt_get_issuer_dn3(crt, &dn, 0);
	if (ret == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		return text_dup("", 0, &m->issuer_dn);
	if (ret < 0)
		return gtls_err(ret, CERTD_ERR_CERT_INVALID);
	rv = text_dup(dn.data ? (const char *)dn.data : "", dn.size,
	    &m->issuer_dn);
	gnutls_free(dn.data);
	return rv;
}

/*
 * Serial as lowercase hex of the integer: the sign-padding zero octets of
 * DER are dropped, so the text matches what people compare it to.
 */
static int
meta_serial(struct cert_meta *m, gnutls_x509_crt_t crt)
{
	unsigned char	 buf[SERIAL_MAX], *p = buf;
	size_t		 size = sizeof(buf);
	int		 ret;

	if ((ret = gnutls_x509_crt_get_serial(crt, buf, &size)) < 0)
		return gtls_err(ret, CERTD_ERR_CERT_INVALID);
	if (size == 0)
		return CERTD_ERR_CERT_INVALID;
	while (size > 1 && *p == 0) {
		p++;
		size--;
	}
	if ((m->serial = malloc(2 * size + 1)) == NULL)
		return CERTD_ERR_NOMEM;
	util_hex(p, size, m->serial);
	return 0;
}

/* The public key's algorithm and size as certd names them. */
static int
meta_key(struct cert_meta *m, gnutls_pubkey_t pub)
{
	gnutls_ecc_curve_t	 curve;
	const char		*name;
	unsigned		 bits = 0;
	int			 alg;

	if ((alg = gnutls_pubkey_get_pk_algorithm(pub, &bits)) < 0)
		return gtls_err(alg, CERTD_ERR_CERT_INVALID);
	switch (alg) {
	case GNUTLS_PK_RSA:
		name = "RSA";
		break;
	case GNUTLS_PK_ECDSA:
		name = "ECDSA";
		/* GnuTLS counts whole octets: P-521 would read 528. */
		if (gnutls_pubkey_export_ecc_raw2(pub, &curve, NULL, NULL,
		    0) == 0 && curve == GNUTLS_ECC_CURVE_SECP521R1)
			bits = 521;
		break;
	case GNUTLS_PK_EDDSA_ED25519:
		name = "Ed25519";
		break;
	case GNUTLS_PK_EDDSA_ED448:
		name = "Ed448";
		break;
	default:
		if ((name = gnutls_pk_get_name(alg)) == NULL)
			name = "unknown";
		break;
	}
	if ((m->key_algorithm = strdup(name)) == NULL)
		return CERTD_ERR_NOMEM;
	m->key_bits = bits;
	return 0;
}

/*
 * Everything cert_meta holds about the leaf.  On failure *what says which
 * part of the leaf could not be read.
 */
static int
meta_fill(struct cert_meta *m, const struct chain *ch, gnutls_pubkey_t pub,
    const char **what)
{
	gnutls_x509_crt_t	 leaf = ch->crt[0];
	time_t			 t;
	int			 rv;

	*what = "its subject CN is not printable UTF-8";
	if ((rv = dn_cn(leaf, gnutls_x509_crt_get_dn_by_oid,
	    &m->subject_cn)) != 0)
		return rv;
	*what = "a DNS or IP subject alternative name is malformed";
	if ((rv = meta_sans(m, leaf)) != 0)
		return rv;
	*what = "its issuer name is not printable UTF-8";
	if ((rv = dn_cn(leaf, gnutls_x509_crt_get_issuer_dn_by_oid,
	    &m->issuer_cn)) != 0)
		return rv;
	if ((rv = meta_issuer_dn(m, leaf)) != 0)
		return rv;
	*what = "its serial number is empty or over 64 bytes";
	if ((rv = meta_serial(m, leaf)) != 0)
		return rv;
	*what = "its validity dates cannot be read";
	if ((t = gnutls_x509_crt_get_activation_time(leaf)) == (time_t)-1)
		return CERTD_ERR_CERT_INVALID;
	m->not_before = t;
	if ((t = gnutls_x509_crt_get_expiration_time(leaf)) == (time_t)-1)
		return CERTD_ERR_CERT_INVALID;
	m->not_after = t;
	util_hex(ch->leaf_sha256, sizeof(ch->leaf_sha256), m->fingerprint);
	*what = "its public key cannot be read";
	if ((rv = meta_key(m, pub)) != 0)
		return rv;
	m->chain_len = ch->n;
	return 0;
}

/*
 * Parse the certificate text into ch.  The caller frees ch even on
 * failure.
 */
static int
chain_parse(struct chain *ch, const char *text, size_t len, char *why,
    size_t whylen)
{
	struct pem_block	 v[CERTD_CHAIN_MAX];
	gnutls_datum_t		 pem, der = { NULL, 0 };
	unsigned		 n, i;
	int			 ret, rv;

	if ((rv = pem_chain_blocks(text, len, v, &n, why, whylen)) != 0)
		return rv;
	for (i = 0; i < n; i++) {
		if ((ret = gnutls_x509_crt_init(&ch->crt[ch->n])) < 0)
			return gtls_err(ret, CERTD_ERR_INTERNAL);
		ch->n++;
		/*
		 * The DER once, from GnuTLS's own PEM decoder: imported as it
		 * is, and the leaf's fingerprint is of these bytes (what a
		 * server presents), not of a re-encoding.
		 */
		pem.data = (unsigned char *)(uintptr_t)v[i].start;
		pem.size = v[i].len;
		if ((ret = gnutls_pem_base64_decode2(NULL, &pem, &der)) < 0 ||
		    (ret = gnutls_x509_crt_import(ch->crt[i], &der,
		    GNUTLS_X509_FMT_DER)) < 0 ||
		    (i == 0 && (ret = gnutls_hash_fast(GNUTLS_DIG_SHA256,
		    der.data, der.size, ch->leaf_sha256)) < 0)) {
			gnutls_free(der.data);
			util_fmt(why, whylen, "certificate %u is not X.509: %s",
			    i + 1, gnutls_strerror(ret));
			return gtls_err(ret, CERTD_ERR_CERT_INVALID);
		}
		gnutls_free(der.data);
		der.data = NULL;
	}
	return 0;
}

static void
chain_free(struct chain *ch)
{
	unsigned	i;

	for (i = 0; i < ch->n; i++)
		gnutls_x509_crt_deinit(ch->crt[i]);
	ch->n = 0;
}

/*
 * "certificate N (CN=...)" for link i of a chain, the CN cut to 64 bytes
 * (on a character boundary), for a reason.
 */
#define CRT_NAME_MAX	112
#define CRT_CN_SHOWN	64
static void
crt_name(gnutls_x509_crt_t crt, unsigned i, char buf[CRT_NAME_MAX])
{
	char	*cn = NULL;
	size_t	 len;

	if (dn_cn(crt, gnutls_x509_crt_get_dn_by_oid, &cn) != 0 || cn == NULL) {
		snprintf(buf, CRT_NAME_MAX, "certificate %u (%s)", i + 1,
		    cn == NULL ? "no printable CN" : "?");
		free(cn);
		return;
	}
	if ((len = strlen(cn)) > CRT_CN_SHOWN) {
		len = CRT_CN_SHOWN;
		while (len > 0 && (cn[len] & 0xc0) == 0x80)
			len--;
	}
	snprintf(buf, CRT_NAME_MAX, "certificate %u (CN=%.*s%s)", i + 1,
	    (int)len, cn, len < strlen(cn) ? "..." : "");
	free(cn);
}

/*
 * Only key types the spec admits; curves other than the NIST three are not,
 * nor RSA over CERTD_RSA_BITS_MAX bits.
 */
static int
key_type_ok(gnutls_pubkey_t pub, char *why, size_t whylen)
{
	gnutls_ecc_curve_t	 curve;
	const char		*name;
	unsigned		 bits = 0;
	int			 alg;

	alg = gnutls_pubkey_get_pk_algorithm(pub, &bits);
	switch (alg) {
	case GNUTLS_PK_RSA:
		if (bits <= CERTD_RSA_BITS_MAX)
			return 1;
		util_fmt(why, whylen, "is RSA of %u bits, over %d", bits,
		    CERTD_RSA_BITS_MAX);
		return 0;
	case GNUTLS_PK_EDDSA_ED25519:
	case GNUTLS_PK_EDDSA_ED448:
		return 1;
	case GNUTLS_PK_ECDSA:
		if (gnutls_pubkey_export_ecc_raw2(pub, &curve, NULL, NULL,
		    0) < 0)
			curve = GNUTLS_ECC_CURVE_INVALID;
		if (curve == GNUTLS_ECC_CURVE_SECP256R1 ||
		    curve == GNUTLS_ECC_CURVE_SECP384R1 ||
		    curve == GNUTLS_ECC_CURVE_SECP521R1)
			return 1;
		name = gnutls_ecc_curve_get_name(curve);
		util_fmt(why, whylen, "is ECDSA on curve %s: only P-256, P-384 "
		    "and P-521", name != NULL ? name : "unknown");
		return 0;
	default:
		name = alg >= 0 ? gnutls_pk_get_name(alg) : NULL;
		util_fmt(why, whylen, "is %s: only RSA, ECDSA and EdDSA keys",
		    name != NULL ? name : "of an unknown algorithm");
		return 0;
	}
}

/*
 * Parse the private key text (pem_key_block).  Only the public half survives,
 * in *out.
 */
static int
key_parse(const char *text, size_t len, gnutls_pubkey_t *out, char *why,
    size_t whylen)
{
	struct pem_block	 b;
	gnutls_privkey_t	 priv = NULL;
	gnutls_pubkey_t		 pub = NULL;
	gnutls_datum_t		 d;
	int			 ret, rv = CERTD_ERR_KEY_INVALID;

	*out = NULL;
	memset(&b, 0, sizeof(b));
	if ((rv = pem_key_block(text, len, &b, why, whylen)) != 0)
		return rv;
	if ((ret = gnutls_privkey_init(&priv)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_INTERNAL);
		goto out;
	}
	d.data = (unsigned char *)(uintptr_t)b.start;
	d.size = b.len;
	/*
	 * No password and GNUTLS_PKCS_PLAIN: an encrypted PKCS#8 body under a
	 * plain label fails instead of reaching a PIN callback or being tried
	 * with an empty password.
	 */
	if ((ret = gnutls_privkey_import_x509_raw(priv, &d,
	    GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN)) < 0) {
		util_fmt(why, whylen, "the %.*s block does not parse: %s",
		    (int)b.label_len, b.label, gnutls_strerror(ret));
		rv = gtls_err(ret, CERTD_ERR_KEY_INVALID);
		goto out;
	}
	if ((ret = gnutls_pubkey_init(&pub)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_INTERNAL);
		goto out;
	}
	if ((ret = gnutls_pubkey_import_privkey(pub, priv, 0, 0)) < 0) {
		util_fmt(why, whylen, "its public key cannot be derived: %s",
		    gnutls_strerror(ret));
		rv = gtls_err(ret, CERTD_ERR_KEY_INVALID);
		goto out;
	}
	if (!key_type_ok(pub, why, whylen)) {
		rv = CERTD_ERR_KEY_INVALID;
		goto out;
	}
	*out = pub;
	pub = NULL;
	rv = 0;
out:
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	if (priv != NULL)
		gnutls_privkey_deinit(priv);
	return rv;
}

/* Same public key: SHA-256 key ids of the SubjectPublicKeyInfo agree. */
static int	key_id_match(gnutls_pubkey_t, gnutls_pubkey_t);

/* The raw parameters of an RSA, EC or EdDSA public key. */
struct key_raw {
	gnutls_ecc_curve_t	curve;		/* EC and EdDSA */
	gnutls_datum_t		a;		/* n, or x */
	gnutls_datum_t		b;		/* e, or y (empty for EdDSA) */
};

/* k's raw parameters into *r: 1, 0 for another kind of key, or an error. */
static int
key_raw(gnutls_pubkey_t k, struct key_raw *r)
{
	int	ret;

	memset(r, 0, sizeof(*r));
	switch (gnutls_pubkey_get_pk_algorithm(k, NULL)) {
	case GNUTLS_PK_RSA:
		ret = gnutls_pubkey_export_rsa_raw2(k, &r->a, &r->b,
		    GNUTLS_EXPORT_FLAG_NO_LZ);
		break;
	case GNUTLS_PK_ECDSA:
	case GNUTLS_PK_EDDSA_ED25519:
	case GNUTLS_PK_EDDSA_ED448:
		ret = gnutls_pubkey_export_ecc_raw2(k, &r->curve, &r->a, &r->b,
		    GNUTLS_EXPORT_FLAG_NO_LZ);
		break;
	default:
		return 0;
	}
	return ret < 0 ? ret : 1;
}

static void
key_raw_free(struct key_raw *r)
{
	gnutls_free(r->a.data);
	gnutls_free(r->b.data);
}

static int
datum_eq(const gnutls_datum_t *x, const gnutls_datum_t *y)
{
	return x->size == y->size &&
	    (x->size == 0 || memcmp(x->data, y->data, x->size) == 0);
}

/*
 * Same public key.  Two RSA, EC or EdDSA keys by their raw parameters (no
 * DER to encode and hash); any other two by their key ids.
 */
static int
key_match(gnutls_pubkey_t a, gnutls_pubkey_t b)
{
	struct key_raw	ka, kb;
	int		ra, rb, rv;

	if (gnutls_pubkey_get_pk_algorithm(a, NULL) !=
	    gnutls_pubkey_get_pk_algorithm(b, NULL) ||
	    (ra = key_raw(a, &ka)) == 0)
		return key_id_match(a, b);
	if (ra < 0)
		return gtls_err(ra, CERTD_ERR_CERT_INVALID);
	if ((rb = key_raw(b, &kb)) < 0) {
		key_raw_free(&ka);
		return gtls_err(rb, CERTD_ERR_KEY_INVALID);
	}
	rv = ka.curve == kb.curve && datum_eq(&ka.a, &kb.a) &&
	    datum_eq(&ka.b, &kb.b) ? 0 : CERTD_ERR_KEY_MISMATCH;
	key_raw_free(&ka);
	key_raw_free(&kb);
	return rv;
}

/* Same public key: SHA-256 key ids of the SubjectPublicKeyInfo agree. */
static int
key_id_match(gnutls_pubkey_t a, gnutls_pubkey_t b)
{
	unsigned char	 ida[KEY_ID_MAX], idb[KEY_ID_MAX];
	size_t		 la = sizeof(ida), lb = sizeof(idb);
	int		 ret;

	if ((ret = gnutls_pubkey_get_key_id(a, GNUTLS_KEYID_USE_SHA256, ida,
	    &la)) < 0)
		return gtls_err(ret, CERTD_ERR_CERT_INVALID);
	if ((ret = gnutls_pubkey_get_key_id(b, GNUTLS_KEYID_USE_SHA256, idb,
	    &lb)) < 0)
		return gtls_err(ret, CERTD_ERR_KEY_INVALID);
	if (la != lb || memcmp(ida, idb, la) != 0)
		return CERTD_ERR_KEY_MISMATCH;
	return 0;
}

/*
 * A key GnuTLS may verify a signature with must be one whose cost is
 * bounded: RSA (or RSA-PSS) of at most CERTD_RSA_BITS_MAX bits with a
 * public exponent of at most 64 bits, an EC key, or EdDSA.  A chain's
 * issuer is the client's to make up, and verification with a 64 Kbit
 * modulus and as long an exponent takes seconds; DSA and the rest are
 * not used by any CA a TLS server chains to.
 */
static int
verify_key_ok(gnutls_x509_crt_t crt)
{
	gnutls_datum_t	m = { NULL, 0 }, e = { NULL, 0 };
	unsigned	bits = 0, i;
	int		alg, ok;

	alg = gnutls_x509_crt_get_pk_algorithm(crt, &bits);
	switch (alg) {
	case GNUTLS_PK_ECDSA:
	case GNUTLS_PK_EDDSA_ED25519:
	case GNUTLS_PK_EDDSA_ED448:
		return 1;
	case GNUTLS_PK_RSA:
	case GNUTLS_PK_RSA_PSS:
		break;
	default:
		return 0;
	}
	if (bits == 0 || bits > CERTD_RSA_BITS_MAX ||
	    gnutls_x509_crt_get_pk_rsa_raw(crt, &m, &e) < 0)
		return 0;
	for (i = 0; i < e.size && e.data[i] == 0; i++)
		;
	ok = m.size <= CERTD_RSA_BITS_MAX / 8 + 1 && e.size - i <= 8;
	gnutls_free(m.data);
	gnutls_free(e.data);
	return ok;
}

/* Why link i does not verify against link i + 1, from GnuTLS's status. */
static void
link_why(const struct chain *ch, unsigned i, unsigned status, char *why,
    size_t whylen)
{
	char	a[CRT_NAME_MAX], b[CRT_NAME_MAX];

	if (why == NULL)
		return;
	crt_name(ch->crt[i], i, a);
	crt_name(ch->crt[i + 1], i + 1, b);
	if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
		util_fmt(why, whylen, "%s is signed with an algorithm GnuTLS "
		    "holds insecure", a);
	else if (status & GNUTLS_CERT_SIGNER_NOT_CA)
		util_fmt(why, whylen,
		    "%s is not a CA certificate, so it cannot "
		    "have issued %s", b, a);
	else if (status & GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE)
		util_fmt(why, whylen, "%s may not issue %s (key usage, path "
		    "length or name constraints)", b, a);
	else if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
		util_fmt(why, whylen,
		    "the signature of %s does not verify with "
		    "the key of %s", a, b);
	else
		util_fmt(why, whylen, "%s does not verify against %s (GnuTLS "
		    "status 0x%x)", a, b, status);
}

/*
 * Each link must name the next as issuer (DN, and key identifiers when both
 * carry them) and carry a signature that the next one's key verifies.  The
 * next certificate is passed as the only trusted CA, so GnuTLS also insists
 * that it may sign certificates (basicConstraints, keyCertSign) and refuses
 * broken signature algorithms.  DO_NOT_ALLOW_SAME keeps a certificate with
 * the same subject and key as its successor from being waved through
 * without a signature check.  The last link is checked against nothing: a
 * self-signed root there is as good a last link as an intermediate (its
 * own signature is not what makes anyone trust it).
 */
static int
chain_verify(const struct chain *ch, char *why, size_t whylen)
{
	char		a[CRT_NAME_MAX], b[CRT_NAME_MAX];
	unsigned	i, status;
	int		ret;

	for (i = 0; i + 1 < ch->n; i++) {
		if (!gnutls_x509_crt_check_issuer(ch->crt[i], ch->crt[i + 1])) {
			if (why != NULL) {
				crt_name(ch->crt[i], i, a);
				crt_name(ch->crt[i + 1], i + 1, b);
				util_fmt(why, whylen,
				    "%s is not issued by the next "
				    "one, %s (leaf first, then each "
				    "certificate's issuer)", a, b);
			}
			return CERTD_ERR_CHAIN_INVALID;
		}
		if (!verify_key_ok(ch->crt[i + 1])) {
			if (why != NULL) {
				crt_name(ch->crt[i + 1], i + 1, b);
				util_fmt(why, whylen,
				    "%s has a key certd does not verify "
				    "signatures with (RSA over %d bits or with "
				    "an exponent over 64 bits, or neither RSA, "
				    "EC nor EdDSA)", b, CERTD_RSA_BITS_MAX);
			}
			return CERTD_ERR_CHAIN_INVALID;
		}
		status = 0;
		ret = gnutls_x509_crt_verify(ch->crt[i], &ch->crt[i + 1], 1,
		    CHAIN_VERIFY_FLAGS, &status);
		if (ret < 0 || status != 0) {
			if (ret < 0)
				status = GNUTLS_CERT_INVALID;
			link_why(ch, i, status, why, whylen);
			return gtls_err(ret < 0 ? ret : 0,
			    CERTD_ERR_CHAIN_INVALID);
		}
	}
	return 0;
}

/*
 * The key is not the first certificate's.  When it is a later one's and
 * the chain does not hold in the order given, the order is what is wrong
 * (a leaf given last, an intermediate first): the chain error, naming the
 * leaf.  Otherwise it is the key that is wrong: the mismatch.
 */
static int
key_elsewhere(const struct chain *ch, gnutls_pubkey_t key, char *why,
    size_t whylen)
{
	gnutls_pubkey_t	 pub;
	char		 a[CRT_NAME_MAX], b[CRT_NAME_MAX];
	unsigned	 i;
	int		 rv = 1;

	for (i = 1; i < ch->n && rv != 0; i++) {
		if (gnutls_pubkey_init(&pub) < 0)
			return CERTD_ERR_NOMEM;
		rv = gnutls_pubkey_import_x509(pub, ch->crt[i], 0) < 0 ? 1 :
		    key_match(pub, key);
		gnutls_pubkey_deinit(pub);
		if (rv == CERTD_ERR_NOMEM)
			return rv;
	}
	crt_name(ch->crt[0], 0, a);
	if (rv != 0) {
		util_fmt(why, whylen,
		    "is not the key of the leaf, %s, nor of any "
		    "other certificate given", a);
		return CERTD_ERR_KEY_MISMATCH;
	}
	crt_name(ch->crt[i - 1], i - 1, b);
	if ((rv = chain_verify(ch, NULL, 0)) == CERTD_ERR_CHAIN_INVALID) {
		util_fmt(why, whylen,
		    "%s holds the private key's public key, so "
		    "it is the leaf: the leaf must come first, then each "
		    "certificate's issuer", b);
		return rv;
	}
	if (rv != 0)
		return rv;
	util_fmt(why, whylen, "is the key of %s, not of the leaf, %s", b, a);
	return CERTD_ERR_KEY_MISMATCH;
}

void
cert_time_why(int err, const struct cert_meta *m, char *why, size_t whylen)
{
	char	when[24];
	char	cn[CRT_CN_SHOWN + 4];
	size_t	len;

	if (m->subject_cn == NULL)
		snprintf(cn, sizeof(cn), "no CN");
	else {
		if ((len = strlen(m->subject_cn)) > CRT_CN_SHOWN) {
			len = CRT_CN_SHOWN;
			while (len > 0 && (m->subject_cn[len] & 0xc0) == 0x80)
				len--;
		}
		snprintf(cn, sizeof(cn), "CN=%.*s", (int)len, m->subject_cn);
	}
	if (err == CERTD_ERR_CERT_EXPIRED) {
		util_time_iso(m->not_after, 1, when);
		util_fmt(why, whylen,
		    "certificate 1, the leaf (%s), expired at %s",
		    cn, when);
	} else {
		util_time_iso(m->not_before, 1, when);
		util_fmt(why, whylen,
		    "certificate 1, the leaf (%s), is valid from "
		    "%s", cn, when);
	}
}

int
cert_check(const char *cert, size_t cert_len, const char *key,
    size_t key_len, int64_t now, struct cert_meta *meta, char *why,
    size_t whylen)
{
	struct chain		 ch;
	struct cert_meta	 m;
	gnutls_pubkey_t		 leaf_pub = NULL, key_pub = NULL;
	const char		*what = NULL;
	int			 ret, rv;

	memset(meta, 0, sizeof(*meta));
	memset(&m, 0, sizeof(m));
	ch.n = 0;
	util_fmt(why, whylen, "%s", "");

	/*
	 * Leaf metadata is read while parsing, so a leaf that parses but holds
	 * unusable names is CERTD_ERR_CERT_INVALID, ahead of the time checks.
	 */
	if ((rv = chain_parse(&ch, cert, cert_len, why, whylen)) != 0)
		goto out;
	if ((ret = gnutls_pubkey_init(&leaf_pub)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_INTERNAL);
		goto out;
	}
	if ((ret = gnutls_pubkey_import_x509(leaf_pub, ch.crt[0], 0)) < 0) {
		util_fmt(why, whylen, "certificate 1, the leaf: its public key "
		    "cannot be read: %s", gnutls_strerror(ret));
		rv = gtls_err(ret, CERTD_ERR_CERT_INVALID);
		goto out;
	}
	if ((rv = meta_fill(&m, &ch, leaf_pub, &what)) != 0) {
		util_fmt(why, whylen, "certificate 1, the leaf: %s", what);
		goto out;
	}

	if (m.not_after < now || m.not_before > now) {
		rv = m.not_after < now ? CERTD_ERR_CERT_EXPIRED :
		    CERTD_ERR_CERT_NOT_YET;
		cert_time_why(rv, &m, why, whylen);
		goto out;
	}
	if ((rv = key_parse(key, key_len, &key_pub, why, whylen)) != 0)
		goto out;
	if ((rv = key_match(leaf_pub, key_pub)) == CERTD_ERR_KEY_MISMATCH)
		rv = key_elsewhere(&ch, key_pub, why, whylen);
	if (rv != 0)
		goto out;
	if ((rv = chain_verify(&ch, why, whylen)) != 0)
		goto out;

	*meta = m;
	memset(&m, 0, sizeof(m));
out:
	if (rv != 0 && rv != CERTD_ERR_NOMEM && why != NULL && whylen > 0 &&
	    why[0] == '\0')
		util_fmt(why, whylen, "%s", rv == CERTD_ERR_KEY_INVALID ?
		    "cannot be read as a private key" :
		    rv == CERTD_ERR_CHAIN_INVALID ? "a link does not verify" :
		    "cannot be read as X.509 certificates");
	cert_meta_clear(&m);
	if (key_pub != NULL)
		gnutls_pubkey_deinit(key_pub);
	if (leaf_pub != NULL)
		gnutls_pubkey_deinit(leaf_pub);
	chain_free(&ch);
	return rv;
}

void
cert_meta_clear(struct cert_meta *meta)
{
	size_t	i;

	if (meta == NULL)
		return;
	free(meta->subject_cn);
	for (i = 0; i < meta->n_sans; i++)
		free(meta->sans[i]);
	free(meta->sans);
	free(meta->issuer_cn);
	free(meta->issuer_dn);
	free(meta->serial);
	free(meta->key_algorithm);
	memset(meta, 0, sizeof(*meta));
}

/* strdup() that passes NULL through; returns 0 or CERTD_ERR_NOMEM. */
static int
dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s != NULL && (*out = strdup(s)) == NULL)
		return CERTD_ERR_NOMEM;
	return 0;
}

int
cert_meta_copy(struct cert_meta *dst, const struct cert_meta *src)
{
	struct cert_meta	 m;
	int			 rv = CERTD_ERR_NOMEM;

	memset(dst, 0, sizeof(*dst));
	memset(&m, 0, sizeof(m));
	if (dup_opt(src->subject_cn, &m.subject_cn) != 0 ||
	    dup_opt(src->issuer_cn, &m.issuer_cn) != 0 ||
	    dup_opt(src->issuer_dn, &m.issuer_dn) != 0 ||
	    dup_opt(src->serial, &m.serial) != 0 ||
	    dup_opt(src->key_algorithm, &m.key_algorithm) != 0)
		goto out;
	if (src->n_sans > 0) {
		if ((m.sans = calloc(src->n_sans, sizeof(*m.sans))) == NULL)
			goto out;
		for (; m.n_sans < src->n_sans; m.n_sans++)
			if ((m.sans[m.n_sans] =
			    strdup(src->sans[m.n_sans])) == NULL)
				goto out;
	}
	m.not_before = src->not_before;
	m.not_after = src->not_after;
	memcpy(m.fingerprint, src->fingerprint, sizeof(m.fingerprint));
	m.key_bits = src->key_bits;
	m.chain_len = src->chain_len;
	*dst = m;
	memset(&m, 0, sizeof(m));
	rv = 0;
out:
	cert_meta_clear(&m);
	return rv;
}

int
cert_sha256(const void *data, size_t len, unsigned char out[32])
{
	if (data == NULL)
		data = "";
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out) < 0)
		return CERTD_ERR_INTERNAL;
	return 0;
}

int
cert_fingerprint_pem(const char *pem, size_t len,
    char out[CERT_FINGERPRINT_LEN + 1])
{
	gnutls_x509_crt_t	 crt = NULL;
	gnutls_datum_t		 d;
	unsigned char		 fp[32];
	size_t			 size = sizeof(fp);
	int			 ret, rv;

	out[0] = '\0';
	if (pem == NULL || len == 0 || len > CERTD_CERT_MAX)
		return CERTD_ERR_CERT_INVALID;
	if ((ret = gnutls_x509_crt_init(&crt)) < 0)
		return gtls_err(ret, CERTD_ERR_INTERNAL);
	/* GnuTLS takes the first CERTIFICATE block of the text. */
	d.data = (unsigned char *)(uintptr_t)pem;
	d.size = (unsigned)len;
	if ((ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (ret = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp,
	    &size)) < 0 || size != sizeof(fp)) {
		rv = gtls_err(ret, CERTD_ERR_CERT_INVALID);
		goto out;
	}
	util_hex(fp, sizeof(fp), out);
	rv = 0;
out:
	gnutls_x509_crt_deinit(crt);
	return rv;
}

int
cert_fingerprint_der(const void *der, size_t len,
    char out[CERT_FINGERPRINT_LEN + 1])
{
	unsigned char	fp[32];

	out[0] = '\0';
	if (der == NULL || len == 0)
		return CERTD_ERR_CERT_INVALID;
	if (cert_sha256(der, len, fp) != 0)
		return CERTD_ERR_INTERNAL;
	util_hex(fp, sizeof(fp), out);
	return 0;
}

int
cert_random(void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (gnutls_rnd(GNUTLS_RND_KEY, buf, len) < 0)
		return CERTD_ERR_INTERNAL;
	return 0;
}

/* An AES-256-GCM handle for key; the handle holds its own copy. */
static int
seal_init(gnutls_aead_cipher_hd_t *h, const unsigned char *key)
{
	unsigned char	k[CERT_SEAL_KEY_LEN];
	gnutls_datum_t	d = { k, sizeof(k) };
	int		ret;

	memcpy(k, key, sizeof(k));	/* the datum wants a mutable pointer */
	ret = gnutls_aead_cipher_init(h, GNUTLS_CIPHER_AES_256_GCM, &d);
	util_wipe(k, sizeof(k));
	return ret < 0 ? CERTD_ERR_INTERNAL : 0;
}

int
cert_seal(const unsigned char key[CERT_SEAL_KEY_LEN], const void *aad,
    size_t aadlen, const void *in, size_t len, unsigned char **out,
    size_t *outlen)
{
	gnutls_aead_cipher_hd_t	 h;
	unsigned char		*box;
	size_t			 clen;
	int			 err;

	*out = NULL;
	*outlen = 0;
	if (len > SIZE_MAX - CERT_SEAL_OVERHEAD)
		return CERTD_ERR_INTERNAL;
	if ((box = malloc(len + CERT_SEAL_OVERHEAD)) == NULL)
		return CERTD_ERR_NOMEM;
	if (gnutls_rnd(GNUTLS_RND_NONCE, box, CERT_SEAL_NONCE_LEN) < 0) {
		free(box);
		return CERTD_ERR_INTERNAL;
	}
	if ((err = seal_init(&h, key)) != 0) {
		free(box);
		return err;
	}
	clen = len + CERT_SEAL_TAG_LEN;
	if (gnutls_aead_cipher_encrypt(h, box, CERT_SEAL_NONCE_LEN, aad,
	    aadlen, CERT_SEAL_TAG_LEN, len > 0 ? in : "", len,
	    box + CERT_SEAL_NONCE_LEN, &clen) < 0 ||
	    clen != len + CERT_SEAL_TAG_LEN) {
		gnutls_aead_cipher_deinit(h);
		util_wipe(box, len + CERT_SEAL_OVERHEAD);
		free(box);
		return CERTD_ERR_INTERNAL;
	}
	gnutls_aead_cipher_deinit(h);
	*out = box;
	*outlen = len + CERT_SEAL_OVERHEAD;
	return 0;
}

int
cert_unseal(const unsigned char key[CERT_SEAL_KEY_LEN], const void *aad,
    size_t aadlen, const void *in, size_t len, char **out, size_t *outlen)
{
	gnutls_aead_cipher_hd_t	 h;
	const unsigned char	*box = in;
	char			*pt;
	size_t			 plen, n;
	int			 ret, err;

	*out = NULL;
	*outlen = 0;
	if (box == NULL || len < CERT_SEAL_OVERHEAD)
		return CERTD_ERR_STORAGE;
	plen = len - CERT_SEAL_OVERHEAD;
	if ((pt = malloc(plen + 1)) == NULL)
		return CERTD_ERR_NOMEM;
	if ((err = seal_init(&h, key)) != 0) {
		free(pt);
		return err;
	}
	n = plen + 1;
	ret = gnutls_aead_cipher_decrypt(h, box, CERT_SEAL_NONCE_LEN, aad,
	    aadlen, CERT_SEAL_TAG_LEN, box + CERT_SEAL_NONCE_LEN,
	    len - CERT_SEAL_NONCE_LEN, pt, &n);
	gnutls_aead_cipher_deinit(h);
	if (ret < 0 || n != plen) {
		util_wipe(pt, plen + 1);
		free(pt);
		return ret == GNUTLS_E_DECRYPTION_FAILED || ret >= 0 ?
		    CERTD_ERR_STORAGE : CERTD_ERR_INTERNAL;
	}
	pt[plen] = '\0';
	*out = pt;
	*outlen = plen;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Key pairs for TLS                                                   */

/* Immutable once made: threads copy from it without a lock. */
struct cert_pair {
	gnutls_x509_crt_t	*crts;		/* leaf first */
	unsigned		 ncrts;
	gnutls_privkey_t	 key;
};

void
cert_pair_free(struct cert_pair *p)
{
	unsigned	i;

	if (p == NULL)
		return;
	for (i = 0; i < p->ncrts; i++)
		gnutls_x509_crt_deinit(p->crts[i]);
	gnutls_free(p->crts);
	if (p->key != NULL)
		gnutls_privkey_deinit(p->key);	/* wipes the key's numbers */
	free(p);
}

static void
pair_copy_free(gnutls_pcert_st *certs, unsigned ncerts, gnutls_privkey_t key)
{
	unsigned	i;

	for (i = 0; i < ncerts; i++)
		gnutls_pcert_deinit(&certs[i]);
	gnutls_free(certs);
	if (key != NULL)
		gnutls_privkey_deinit(key);
}

int
cert_pair_copy(const struct cert_pair *p, gnutls_pcert_st **certs,
    unsigned *ncerts, gnutls_privkey_t *key)
{
	gnutls_pcert_st		*pc;
	gnutls_x509_privkey_t	 x = NULL;
	gnutls_privkey_t	 k = NULL;
	unsigned		 n = 0;
	int			 ret;

	if ((pc = gnutls_calloc(p->ncrts, sizeof(*pc))) == NULL)
		return CERTD_ERR_NOMEM;
	for (n = 0; n < p->ncrts; n++)
		if ((ret = gnutls_pcert_import_x509(&pc[n], p->crts[n], 0)) < 0)
			goto fail;
	if ((ret = gnutls_privkey_export_x509(p->key, &x)) < 0 ||
	    (ret = gnutls_privkey_init(&k)) < 0)
		goto fail;
	if ((ret = gnutls_privkey_import_x509(k, x,
	    GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE)) < 0)
		goto fail;
	*certs = pc;
	*ncerts = n;
	*key = k;
	return 0;
fail:
	gnutls_x509_privkey_deinit(x);	/* k did not take it */
	pair_copy_free(pc, n, k);
	return gtls_err(ret, CERTD_ERR_INTERNAL);
}

int
cert_pair_credentials(const struct cert_pair *p,
    gnutls_certificate_credentials_t cred)
{
	gnutls_pcert_st		*certs;
	gnutls_privkey_t	 key;
	unsigned		 n;
	int			 ret, rv;

	if ((rv = cert_pair_copy(p, &certs, &n, &key)) != 0)
		return rv;
	/* On success cred owns the elements and the key, not the array. */
	if ((ret = gnutls_certificate_set_key(cred, NULL, 0, certs, (int)n,
	    key)) < 0) {
		pair_copy_free(certs, n, key);
		return gtls_err(ret, CERTD_ERR_INTERNAL);
	}
	gnutls_free(certs);
	return 0;
}

/* Do the chain's leaf and the key have the same public key? */
static int
pair_matches(const struct cert_pair *p)
{
	gnutls_pubkey_t	pub = NULL, leaf = NULL;
	int		ok;

	ok = gnutls_pubkey_init(&pub) >= 0 && gnutls_pubkey_init(&leaf) >= 0 &&
	    gnutls_pubkey_import_privkey(pub, p->key, 0, 0) >= 0 &&
	    gnutls_pubkey_import_x509(leaf, p->crts[0], 0) >= 0 &&
	    key_match(pub, leaf) == 0;
	if (leaf != NULL)
		gnutls_pubkey_deinit(leaf);
	if (pub != NULL)
		gnutls_pubkey_deinit(pub);
	return ok;
}

/*
 * The chain is imported the way GnuTLS imports one into its credentials
 * (GNUTLS_X509_CRT_LIST_SORT), which is what the listener did before it
 * loaded its pair here; the chains certd holds are in order already.
 * GnuTLS wipes its decoding buffers of the key.
 */
struct cert_pair *
cert_pair_new(const char *cert, size_t cert_len, const char *key,
    size_t key_len, char *why, size_t whylen)
{
	struct cert_pair	*p;
	gnutls_datum_t		 d;
	gnutls_pcert_st		*certs;
	gnutls_privkey_t	 k;
	unsigned		 n;
	int			 ret;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		util_fmt(why, whylen, "out of memory");
		return NULL;
	}
	d.data = (unsigned char *)(uintptr_t)cert;
	d.size = (unsigned)cert_len;
	if ((ret = gnutls_x509_crt_list_import2(&p->crts, &p->ncrts, &d,
	    GNUTLS_X509_FMT_PEM, GNUTLS_X509_CRT_LIST_SORT)) < 0) {
		util_fmt(why, whylen, "certificate: %s", gnutls_strerror(ret));
		goto fail;
	}
	if (p->ncrts == 0 || p->ncrts > CERTD_CHAIN_MAX) {
		util_fmt(why, whylen, "certificate: %u certificates in the "
		    "chain (1 to %d)", p->ncrts, CERTD_CHAIN_MAX);
		goto fail;
	}
	d.data = (unsigned char *)(uintptr_t)key;
	d.size = (unsigned)key_len;
	if ((ret = gnutls_privkey_init(&p->key)) < 0 ||
	    (ret = gnutls_privkey_import_x509_raw(p->key, &d,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		util_fmt(why, whylen, "private key: %s", gnutls_strerror(ret));
		goto fail;
	}
	if (!pair_matches(p)) {
		util_fmt(why, whylen, "the private key does not match the "
		    "certificate");
		goto fail;
	}
	/* What every handshake will do, once now. */
	if (cert_pair_copy(p, &certs, &n, &k) != 0) {
		util_fmt(why, whylen, "credentials: cannot copy the pair");
		goto fail;
	}
	pair_copy_free(certs, n, k);
	return p;
fail:
	cert_pair_free(p);
	return NULL;
}
