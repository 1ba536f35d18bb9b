/* SPDX-License-Identifier: MIT */
/*
 * Error table.  Messages of the certificate, alias, team and in-use rows are
 * part of the API contract (SPEC section 2); keep them verbatim.  A socket
 * error frame carries the number a REST answer has as its status, and
 * libcertd returns it negated: the columns are written out all the same, so
 * that each door's number is read here, and test_err.c checks that they
 * agree with each other and with doc/protocol.md and doc/api.md.
 */
#include <stddef.h>

#include "err.h"

#define BOTH	(ERR_REST | ERR_SOCKET)
#define REST	ERR_REST
#define SOCKET	ERR_SOCKET

static const struct err_row err_table[] = {
	{ CERTD_OK,			200,   0, 0, BOTH,
	    "success", "成功" },
	{ CERTD_ERR_NOMEM,		503, 503, CERTD_E_UNAVAILABLE, BOTH,
	    "out of memory", "服务暂不可用" },
	{ CERTD_ERR_STORAGE,		503, 503, CERTD_E_UNAVAILABLE, BOTH,
	    "storage unavailable", "存储不可用" },
	{ CERTD_ERR_BAD_REQUEST,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "invalid request", "请求参数错误" },
	{ CERTD_ERR_TOO_LARGE,		413, 413, CERTD_E_TOO_LARGE, REST,
	    "request body too large", "请求体过大" },
	{ CERTD_ERR_UNAUTHORIZED,	401, 401, CERTD_E_UNAUTHORIZED, REST,
	    "unauthorized", "未授权" },
	{ CERTD_ERR_FORBIDDEN,		403, 403, CERTD_E_FORBIDDEN, BOTH,
	    "permission denied", "没有权限" },
	{ CERTD_ERR_NO_TEAM,		404, 404, CERTD_E_NOT_FOUND, REST,
	    "no found team", "团队不存在" },
	{ CERTD_ERR_NOT_FOUND,		404, 404, CERTD_E_NOT_FOUND, BOTH,
	    "certificate not found", "证书不存在" },
	{ CERTD_ERR_NO_ROUTE,		404, 404, CERTD_E_NOT_FOUND, REST,
	    "not found", "资源不存在" },
	{ CERTD_ERR_METHOD,		405, 405, CERTD_E_METHOD, REST,
	    "method not allowed", "不支持的请求方法" },
	{ CERTD_ERR_ALIAS_EXISTS,	412, 412, CERTD_E_PRECONDITION, BOTH,
	    "certificate name already exists", "证书别名已存在" },
	{ CERTD_ERR_CERT_INVALID,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the certificate is invalid", "无效证书" },
	{ CERTD_ERR_CERT_EXPIRED,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the certificate has been expired", "证书已过期" },
	{ CERTD_ERR_CERT_NOT_YET,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the certificate is not yet valid", "证书尚未生效" },
	{ CERTD_ERR_KEY_INVALID,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the private key is invalid", "无效私钥" },
	{ CERTD_ERR_KEY_MISMATCH,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the certificate key pair mismatch", "证书密钥对不匹配" },
	{ CERTD_ERR_CHAIN_INVALID,	400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the certificate chain is invalid", "证书链无效" },
	{ CERTD_ERR_IN_USE,		400, 400, CERTD_E_BAD_REQUEST, BOTH,
	    "the certificate is still in use", "仍有服务在使用该证书" },
	{ CERTD_ERR_NO_WATCH,		404, 404, CERTD_E_NOT_FOUND, SOCKET,
	    "watch not found", "订阅不存在" },
	{ CERTD_ERR_SHUTDOWN,		503, 503, CERTD_E_UNAVAILABLE, BOTH,
	    "shutting down", "服务正在停止" },
	{ CERTD_ERR_NO_REVISION,	404, 404, CERTD_E_NOT_FOUND, BOTH,
	    "revision not found", "版本不存在" },
	{ CERTD_ERR_BACKUP_EXISTS,	412, 412, CERTD_E_PRECONDITION, SOCKET,
	    "backup already exists", "备份已存在" },
	{ CERTD_ERR_FRAME_EMPTY,	400, 400, CERTD_E_BAD_REQUEST, SOCKET,
	    "empty frame", "空帧" },
	{ CERTD_ERR_FRAME_TOO_LARGE,	413, 413, CERTD_E_TOO_LARGE, SOCKET,
	    "frame too large", "帧过大" },
	{ CERTD_ERR_FRAME_MALFORMED,	400, 400, CERTD_E_BAD_REQUEST, SOCKET,
	    "malformed frame", "帧格式错误" },
	{ CERTD_ERR_TOO_MANY_CONNS,	503, 503, CERTD_E_UNAVAILABLE, SOCKET,
	    "too many connections", "连接过多" },
	{ CERTD_ERR_TOO_SLOW,		503, 503, CERTD_E_UNAVAILABLE, SOCKET,
	    "subscriber too slow", "订阅者处理过慢" },
	{ CERTD_ERR_CLUSTER,		503, 503, CERTD_E_UNAVAILABLE, BOTH,
	    "cluster unavailable", "集群不可用" },
	/* Last: what a code not in the table is answered as. */
	{ CERTD_ERR_INTERNAL,		503, 503, CERTD_E_UNAVAILABLE, BOTH,
	    "internal error", "服务暂不可用" },
};

#define ERR_ROWS	(sizeof(err_table) / sizeof(err_table[0]))

static const struct err_row *
err_find(int err)
{
	size_t	i;

	for (i = 0; i < ERR_ROWS; i++)
		if (err_table[i].err == err)
			return &err_table[i];
	return &err_table[ERR_ROWS - 1];
}

int
err_http_status(int err)
{
	return err_find(err)->http;
}

int
err_socket_code(int err)
{
	return err_find(err)->socket;
}

int
err_client_code(int err)
{
	return err_find(err)->client;
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

const struct err_row *
err_rows(size_t *n)
{
	*n = ERR_ROWS;
	return err_table;
}
