/* SPDX-License-Identifier: MIT */
/*
 * Certificate and private key validation with GnuTLS.
 *
 * Text comes in from a client, a verdict and metadata go out; there is no
 * I/O here.  We find the PEM block boundaries ourselves, so that anything
 * in the certificate text that is not a CERTIFICATE block, or anything in the
 * key text besides exactly one private key block, is refused before GnuTLS
 * sees it, and so that chain order is ours to judge rather than something a
 * sorting import quietly repairs.  GnuTLS only ever gets exact, length-bounded
 * slices of the caller's buffers (its datums are not NUL-terminated), so we
 * make no copies of the key text and have nothing of it to wipe; the private
 * key object is released as soon as its public half has been derived.  Chain
 * links are checked pairwise, each certificate against the next one as its
 * only trusted issuer, so a chain need not end at a root and the validity
 * period of issuers is not our business.
 *
 * Private keys at rest are sealed here too (cert_seal, cert_unseal): the
 * store decides what to seal under which key, this file only does the AEAD.
 *
 * This is the only file of the daemon that calls gnutls_*.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "certd/constants.h"
#include "cert.h"

#define PEM_BEGIN	"-----BEGIN "
#define PEM_END		"-----END "
#define PEM_DASHES	"-----"
#define PEM_LABEL_MAX	64
#define SERIAL_MAX	64	/* RFC 5280 says 20 octets; be lenient */
#define KEY_ID_MAX	64

/* Checks applied to every link, see chain_verify(). */
#define CHAIN_VERIFY_FLAGS						\
	(GNUTLS_VERIFY_DISABLE_TIME_CHECKS |				\
	 GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS |			\
	 GNUTLS_VERIFY_ALLOW_X509_V1_CA_CRT |				\
	 GNUTLS_VERIFY_DO_NOT_ALLOW_SAME)

/*
 * One PEM block inside a caller's buffer.  Nothing is owned: every pointer
 * points into the text that pem_next() scanned.
 */
struct pem_block {
	const char	*label;		/* not NUL-terminated */
	size_t		 label_len;
	const char	*start;		/* at "-----BEGIN " */
	size_t		 len;		/* up to the end of the END marker */
};

/* A parsed chain; crt[0] is the leaf, the first n entries are live. */
struct chain {
	gnutls_x509_crt_t	 crt[CERTD_CHAIN_MAX];
	unsigned		 n;
};

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
is_base64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
}

static int
is_label_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ';
}

static int
has_prefix(const char *p, const char *end, const char *prefix)
{
	size_t	len = strlen(prefix);

	return (size_t)(end - p) >= len && memcmp(p, prefix, len) == 0;
}

/*
 * Take the next PEM block from [*pp, end).  Returns 1 and advances *pp past
 * the block, 0 when only white space is left, -1 on anything else: text
 * outside a block, a malformed marker, a mismatched END label, or a body that
 * holds more than base64 and white space (which also refuses RFC 1421
 * headers such as "Proc-Type: 4,ENCRYPTED").
 */
static int
pem_next(const char **pp, const char *end, struct pem_block *b)
{
	const char	*p = *pp, *q;

	while (p < end && is_space(*p))
		p++;
	if (p == end)
		return 0;
	if (!has_prefix(p, end, PEM_BEGIN))
		return -1;
	b->start = p;
	p += strlen(PEM_BEGIN);
	b->label = p;
	while (p < end && is_label_char(*p) && p - b->label <= PEM_LABEL_MAX)
		p++;
	b->label_len = p - b->label;
	if (b->label_len == 0 || !has_prefix(p, end, PEM_DASHES))
		return -1;
	p += strlen(PEM_DASHES);

	/* The BEGIN marker ends its line. */
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	if (p == end || *p != '\n')
		return -1;

	/* Body: base64 and white space up to the END marker. */
	for (; p < end && *p != '-'; p++)
		if (!is_base64(*p) && !is_space(*p))
			return -1;
	if (!has_prefix(p, end, PEM_END))
		return -1;
	q = p + strlen(PEM_END);
	if ((size_t)(end - q) < b->label_len ||
	    memcmp(q, b->label, b->label_len) != 0)
		return -1;
	q += b->label_len;
	if (!has_prefix(q, end, PEM_DASHES))
		return -1;
	q += strlen(PEM_DASHES);
	if (q < end && !is_space(*q))
		return -1;
	b->len = q - b->start;
	*pp = q;
	return 1;
}

static int
label_is(const struct pem_block *b, const char *label)
{
	return b->label_len == strlen(label) &&
	    memcmp(b->label, label, b->label_len) == 0;
}

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

/* NUL-terminated copy of [s, s + len), refused unless text_ok(). */
static int
text_dup(const char *s, size_t len, char **out)
{
	char	*t;

	*out = NULL;
	if (!text_ok(s, len))
		return CERTD_ERR_CERT_INVALID;
	if ((t = malloc(len + 1)) == NULL)
		return CERTD_ERR_NOMEM;
	memcpy(t, s, len);
	t[len] = '\0';
	*out = t;
	return 0;
}

static void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char	 digits[] = "0123456789abcdef";
	size_t			 i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
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
	hex_encode(p, size, m->serial);
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

/* Everything cert_meta holds about the leaf. */
static int
meta_fill(struct cert_meta *m, gnutls_x509_crt_t leaf, gnutls_pubkey_t pub,
    unsigned chain_len)
{
	unsigned char	 fp[32];
	size_t		 size = sizeof(fp);
	time_t		 t;
	int		 ret, rv;

	if ((rv = dn_cn(leaf, gnutls_x509_crt_get_dn_by_oid,
	    &m->subject_cn)) != 0)
		return rv;
	if ((rv = meta_sans(m, leaf)) != 0)
		return rv;
	if ((rv = dn_cn(leaf, gnutls_x509_crt_get_issuer_dn_by_oid,
	    &m->issuer_cn)) != 0)
		return rv;
	if ((rv = meta_issuer_dn(m, leaf)) != 0)
		return rv;
	if ((rv = meta_serial(m, leaf)) != 0)
		return rv;
	if ((t = gnutls_x509_crt_get_activation_time(leaf)) == (time_t)-1)
		return CERTD_ERR_CERT_INVALID;
	m->not_before = t;
	if ((t = gnutls_x509_crt_get_expiration_time(leaf)) == (time_t)-1)
		return CERTD_ERR_CERT_INVALID;
	m->not_after = t;
	if ((ret = gnutls_x509_crt_get_fingerprint(leaf, GNUTLS_DIG_SHA256,
	    fp, &size)) < 0 || size != sizeof(fp))
		return gtls_err(ret, CERTD_ERR_CERT_INVALID);
	hex_encode(fp, sizeof(fp), m->fingerprint);
	if ((rv = meta_key(m, pub)) != 0)
		return rv;
	m->chain_len = chain_len;
	return 0;
}

/*
 * Parse the certificate text into ch.  Only CERTIFICATE blocks separated by
 * white space, at most CERTD_CHAIN_MAX of them.  The caller frees ch even on
 * failure.
 */
static int
chain_parse(struct chain *ch, const char *text, size_t len)
{
	struct pem_block	 b;
	gnutls_datum_t		 d;
	const char		*p = text, *end;
	int			 r, ret;

	if (text == NULL || len == 0 || len > CERTD_CERT_MAX)
		return CERTD_ERR_CERT_INVALID;
	end = text + len;
	while ((r = pem_next(&p, end, &b)) == 1) {
		if (!label_is(&b, "CERTIFICATE") || ch->n == CERTD_CHAIN_MAX)
			return CERTD_ERR_CERT_INVALID;
		if ((ret = gnutls_x509_crt_init(&ch->crt[ch->n])) < 0)
			return gtls_err(ret, CERTD_ERR_INTERNAL);
		ch->n++;
		d.data = (unsigned char *)(uintptr_t)b.start;
		d.size = b.len;
		if ((ret = gnutls_x509_crt_import(ch->crt[ch->n - 1], &d,
		    GNUTLS_X509_FMT_PEM)) < 0)
			return gtls_err(ret, CERTD_ERR_CERT_INVALID);
	}
	if (r < 0 || ch->n == 0)
		return CERTD_ERR_CERT_INVALID;
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
 * Only key types the spec admits; curves other than the NIST three are not,
 * nor RSA over CERT_RSA_BITS_MAX bits.
 */
static int
key_type_ok(gnutls_pubkey_t pub)
{
	gnutls_ecc_curve_t	curve;
	unsigned		bits = 0;
	int			alg;

	alg = gnutls_pubkey_get_pk_algorithm(pub, &bits);
	switch (alg) {
	case GNUTLS_PK_RSA:
		return bits <= CERT_RSA_BITS_MAX;
	case GNUTLS_PK_EDDSA_ED25519:
	case GNUTLS_PK_EDDSA_ED448:
		return 1;
	case GNUTLS_PK_ECDSA:
		if (gnutls_pubkey_export_ecc_raw2(pub, &curve, NULL, NULL,
		    0) < 0)
			return 0;
		return curve == GNUTLS_ECC_CURVE_SECP256R1 ||
		    curve == GNUTLS_ECC_CURVE_SECP384R1 ||
		    curve == GNUTLS_ECC_CURVE_SECP521R1;
	default:
		return 0;
	}
}

/*
 * Parse the private key text: exactly one unencrypted RSA, EC or PKCS#8
 * block and white space, after an optional EC PARAMETERS block (what
 * `openssl ecparam -genkey` writes; OpenSSL and GnuTLS skip it when they
 * read the key).  Only the public half survives, in *out.
 */
static int
key_parse(const char *text, size_t len, gnutls_pubkey_t *out)
{
	struct pem_block	 b, extra;
	gnutls_privkey_t	 priv = NULL;
	gnutls_pubkey_t		 pub = NULL;
	gnutls_datum_t		 d;
	const char		*p = text, *end;
	int			 ret, rv = CERTD_ERR_KEY_INVALID;

	*out = NULL;
	if (text == NULL || len == 0 || len > CERTD_KEY_MAX)
		return CERTD_ERR_KEY_INVALID;
	end = text + len;
	if (pem_next(&p, end, &b) != 1)
		return CERTD_ERR_KEY_INVALID;
	if (label_is(&b, "EC PARAMETERS") && (pem_next(&p, end, &b) != 1 ||
	    !label_is(&b, "EC PRIVATE KEY")))
		return CERTD_ERR_KEY_INVALID;
	if (pem_next(&p, end, &extra) != 0)
		return CERTD_ERR_KEY_INVALID;
	/* "ENCRYPTED PRIVATE KEY" and anything else stops here. */
	if (!label_is(&b, "RSA PRIVATE KEY") &&
	    !label_is(&b, "EC PRIVATE KEY") && !label_is(&b, "PRIVATE KEY"))
		return CERTD_ERR_KEY_INVALID;

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
		rv = gtls_err(ret, CERTD_ERR_KEY_INVALID);
		goto out;
	}
	if ((ret = gnutls_pubkey_init(&pub)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_INTERNAL);
		goto out;
	}
	if ((ret = gnutls_pubkey_import_privkey(pub, priv, 0, 0)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_KEY_INVALID);
		goto out;
	}
	if (!key_type_ok(pub)) {
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
static int
key_match(gnutls_pubkey_t a, gnutls_pubkey_t b)
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
 * bounded: RSA (or RSA-PSS) of at most CERT_RSA_BITS_MAX bits with a
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
	if (bits == 0 || bits > CERT_RSA_BITS_MAX ||
	    gnutls_x509_crt_get_pk_rsa_raw(crt, &m, &e) < 0)
		return 0;
	for (i = 0; i < e.size && e.data[i] == 0; i++)
		;
	ok = m.size <= CERT_RSA_BITS_MAX / 8 + 1 && e.size - i <= 8;
	gnutls_free(m.data);
	gnutls_free(e.data);
	return ok;
}

/*
 * Each link must name the next as issuer (DN, and key identifiers when both
 * carry them) and carry a signature that the next one's key verifies.  The
 * next certificate is passed as the only trusted CA, so GnuTLS also insists
 * that it may sign certificates (basicConstraints, keyCertSign) and refuses
 * broken signature algorithms.  DO_NOT_ALLOW_SAME keeps a certificate with
 * the same subject and key as its successor from being waved through
 * without a signature check.
 */
static int
chain_verify(const struct chain *ch)
{
	unsigned	i, status;
	int		ret;

	for (i = 0; i + 1 < ch->n; i++) {
		if (!gnutls_x509_crt_check_issuer(ch->crt[i], ch->crt[i + 1]) ||
		    !verify_key_ok(ch->crt[i + 1]))
			return CERTD_ERR_CHAIN_INVALID;
		status = 0;
		ret = gnutls_x509_crt_verify(ch->crt[i], &ch->crt[i + 1], 1,
		    CHAIN_VERIFY_FLAGS, &status);
		if (ret < 0)
			return gtls_err(ret, CERTD_ERR_CHAIN_INVALID);
		if (status != 0)
			return CERTD_ERR_CHAIN_INVALID;
	}
	return 0;
}

int
cert_check(const char *cert, size_t cert_len, const char *key,
    size_t key_len, int64_t now, struct cert_meta *meta)
{
	struct chain		 ch;
	struct cert_meta	 m;
	gnutls_pubkey_t		 leaf_pub = NULL, key_pub = NULL;
	int			 ret, rv;

	memset(meta, 0, sizeof(*meta));
	memset(&m, 0, sizeof(m));
	ch.n = 0;

	/*
	 * Leaf metadata is read while parsing, so a leaf that parses but holds
	 * unusable names is CERTD_ERR_CERT_INVALID, ahead of the time checks.
	 */
	if ((rv = chain_parse(&ch, cert, cert_len)) != 0)
		goto out;
	if ((ret = gnutls_pubkey_init(&leaf_pub)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_INTERNAL);
		goto out;
	}
	if ((ret = gnutls_pubkey_import_x509(leaf_pub, ch.crt[0], 0)) < 0) {
		rv = gtls_err(ret, CERTD_ERR_CERT_INVALID);
		goto out;
	}
	if ((rv = meta_fill(&m, ch.crt[0], leaf_pub, ch.n)) != 0)
		goto out;

	if (m.not_after < now) {
		rv = CERTD_ERR_CERT_EXPIRED;
		goto out;
	}
	if (m.not_before > now) {
		rv = CERTD_ERR_CERT_NOT_YET;
		goto out;
	}
	if ((rv = key_parse(key, key_len, &key_pub)) != 0)
		goto out;
	if ((rv = key_match(leaf_pub, key_pub)) != 0)
		goto out;
	if ((rv = chain_verify(&ch)) != 0)
		goto out;

	*meta = m;
	memset(&m, 0, sizeof(m));
out:
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
	hex_encode(fp, sizeof(fp), out);
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
	hex_encode(fp, sizeof(fp), out);
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
	gnutls_memset(k, 0, sizeof(k));
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
		gnutls_memset(box, 0, len + CERT_SEAL_OVERHEAD);
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
		gnutls_memset(pt, 0, plen + 1);
		free(pt);
		return ret == GNUTLS_E_DECRYPTION_FAILED || ret >= 0 ?
		    CERTD_ERR_STORAGE : CERTD_ERR_INTERNAL;
	}
	pt[plen] = '\0';
	*out = pt;
	*outlen = plen;
	return 0;
}

void
cert_wipe(void *buf, size_t len)
{
	if (buf != NULL && len > 0)
		gnutls_memset(buf, 0, len);
}
