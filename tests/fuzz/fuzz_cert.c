/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the certificate and key parser (cert_check).  Input: a
 * 2-byte big-endian certificate length, that many bytes of certificate PEM,
 * the rest the key PEM.  The time is fixed so that a run is reproducible.
 */
#include <stdint.h>
#include <string.h>

#include "cert.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW	1735689600	/* 2025-01-01T00:00:00Z */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert_meta	 meta;
	size_t			 cert_len;

	if (size < 2)
		return 0;
	cert_len = (size_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;
	if (cert_len > size)
		cert_len = size;
	memset(&meta, 0, sizeof(meta));
	if (cert_check((const char *)data, cert_len,
	    (const char *)data + cert_len, size - cert_len, FUZZ_NOW,
	    &meta) == 0) {
		/* Touch what a caller reads, so ASan checks it. */
		size_t	i, n = 0;

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
	}
	cert_meta_clear(&meta);
	return 0;
}
