/* SPDX-License-Identifier: MIT */
/*
 * Error table.  Messages of the certificate, alias, team and in-use rows are
 * part of the API contract (SPEC section 2); keep them verbatim.
 */
#include <stddef.h>

#include "err.h"

struct err_row {
	int		 err;
	int		 status;
	const char	*msg;
	const char	*msg_show;
};

static const struct err_row err_rows[] = {
	{ CERTD_OK,			200, "success", "成功" },
	{ CERTD_ERR_NOMEM,		503, "out of memory", "服务暂不可用" },
	{ CERTD_ERR_STORAGE,		503, "storage unavailable", "存储不可用" },
	{ CERTD_ERR_BAD_REQUEST,	400, "invalid request", "请求参数错误" },
	{ CERTD_ERR_TOO_LARGE,		413, "request body too large", "请求体过大" },
	{ CERTD_ERR_UNAUTHORIZED,	401, "unauthorized", "未授权" },
	{ CERTD_ERR_FORBIDDEN,		403, "permission denied", "没有权限" },
	{ CERTD_ERR_NO_TEAM,		404, "no found team", "团队不存在" },
	{ CERTD_ERR_NOT_FOUND,		404, "certificate not found", "证书不存在" },
	{ CERTD_ERR_NO_ROUTE,		404, "not found", "资源不存在" },
	{ CERTD_ERR_METHOD,		405, "method not allowed", "不支持的请求方法" },
	{ CERTD_ERR_ALIAS_EXISTS,	412, "certificate name already exists", "证书别名已存在" },
	{ CERTD_ERR_CERT_INVALID,	400, "the certificate is invalid", "无效证书" },
	{ CERTD_ERR_CERT_EXPIRED,	400, "the certificate has been expired", "证书已过期" },
	{ CERTD_ERR_CERT_NOT_YET,	400, "the certificate is not yet valid", "证书尚未生效" },
	{ CERTD_ERR_KEY_INVALID,	400, "the private key is invalid", "无效私钥" },
	{ CERTD_ERR_KEY_MISMATCH,	400, "the certificate key pair mismatch", "证书密钥对不匹配" },
	{ CERTD_ERR_CHAIN_INVALID,	400, "the certificate chain is invalid", "证书链无效" },
	{ CERTD_ERR_IN_USE,		400, "the certificate is still in use", "仍有服务在使用该证书" },
	{ CERTD_ERR_NO_WATCH,		404, "watch not found", "订阅不存在" },
	{ CERTD_ERR_SHUTDOWN,		503, "shutting down", "服务正在停止" },
	{ CERTD_ERR_NO_REVISION,	404, "revision not found", "版本不存在" },
	{ CERTD_ERR_BACKUP_EXISTS,	412, "backup already exists", "备份已存在" },
	{ CERTD_ERR_INTERNAL,		503, "internal error", "服务暂不可用" },
};

static const struct err_row *
err_find(int err)
{
	size_t	i;

	for (i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++)
		if (err_rows[i].err == err)
			return &err_rows[i];
	return &err_rows[sizeof(err_rows) / sizeof(err_rows[0]) - 1];
}

int
err_status(int err)
{
	return err_find(err)->status;
}

const char *
err_msg(int err)
{
	return err_find(err)->msg;
}

const char *
err_msg_show(int err)
{
	return err_find(err)->msg_show;
}
