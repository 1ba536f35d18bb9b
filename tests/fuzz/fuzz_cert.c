/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the certificate and key parser (cert_check).  Input: a
 * 2-byte big-endian certificate length, that many bytes of certificate PEM,
 * the rest the key PEM.  The time is fixed so that a run is reproducible.
 * A refusal's reason must be printable UTF-8; the normal form of either
 * text (pem_normalize) must be normal itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certd/constants.h"
#include "cert.h"
#include "pem.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1735689600	/* 2025-01-01T00:00:00Z */

static void
normalize_twice(const char *text, size_t len, int kind)
{
	char	 why[CERT_WHY_MAX], *norm, *again;
	size_t	 norm_len, again_len;

	if (pem_normalize(text, len, kind, &norm, &norm_len, why,
	    sizeof(why)) != 0 || norm == NULL)
		return;
	if (pem_normalize(norm, norm_len, kind, &again, &again_len, why,
	    sizeof(why)) != 0 || again != NULL)
		__builtin_trap();
	free(norm);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert_meta	 meta;
	char			 why[CERT_WHY_MAX];
	size_t			 cert_len, i;
	int			 rv;

	if (size < 2)
		return 0;
	cert_len = (size_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;
	if (cert_len > size)
		cert_len = size;
	memset(&meta, 0, sizeof(meta));
	if ((rv = cert_check((const char *)data, cert_len,
	    (const char *)data + cert_len, size - cert_len, FUZZ_NOW,
	    &meta, why, sizeof(why))) == 0) {
		/* Touch what a caller reads, so ASan checks it. */
		size_t	n = 0;

		for (i = 0; i < meta.n_sans; i++)
			n += strlen(meta.sans[i]);
		n += strlen(meta.fingerprint);
		if (meta.serial != NULL)
			n += strlen(meta.serial);
		if (meta.issuer_dn != NULL)
			n += strlen(meta.issuer_dn);
		if (meta.subject_cn != NULL)
			n += strlen(meta.subject_cn);
		(void)n;
	} else if (rv != CERTD_ERR_NOMEM) {
		/* A reason a client is told: printable UTF-8, never empty. */
		if (why[0] == '\0' || !util_utf8_valid(why, strlen(why)))
			__builtin_trap();
		for (i = 0; why[i] != '\0'; i++)
			if ((unsigned char)why[i] < 0x20)
				__builtin_trap();
	}
	cert_meta_clear(&meta);

	/*
	 * Normalizing is idempotent, and what it makes reads as blocks
	 * again.
	 */
	normalize_twice((const char *)data, cert_len, PEM_CHAIN);
	normalize_twice((const char *)data + cert_len, size - cert_len,
	    PEM_KEY);
	return 0;
}
