/* SPDX-License-Identifier: MIT */
/*
 * Daemon configuration: built-in defaults, then the config file, then the
 * command line.  The file is INI-style (a '#' or ';' after a blank starts a
 * comment, also after a value):
 *
 *	# comment
 *	[certd]
 *	data_dir = /var/lib/certd
 *	listen = 127.0.0.1:7070
 *	socket = /run/certd/certd.sock
 *	token_file = /etc/certd/tokens
 *	master_key = /var/lib/certd/master.key
 *	log_level = info
 *	log_target = stderr		# or syslog
 *	socket_group = ssl-cert		# group of the socket (mode 0660)
 *	frame_max = 1048576		# socket frame limit, bytes
 *	ctl_max_conns = 256		# socket connections in total
 *	ctl_max_conns_per_uid = 32
 *	ctl_idle_timeout = 60		# seconds, connections without a watch
 *	ctl_out_limit = 4194304		# queued bytes before events coalesce
 *	log_retain = 100000		# change-log entries kept for resume
 *	expiry_warn_days = 30,7,1	# expiring events and warnings
 *	expiry_scan_interval = 3600	# seconds between scans
 *	history_keep = 10		# versions per certificate, 1-1000
 *	cache_size = 8388608		# bytes of records cached in memory
 *	tls_cert = /etc/certd/rest.pem	# or certd:TEAM/ALIAS: REST over TLS
 *	tls_key = /etc/certd/rest.key
 *	tls_client_ca = /etc/certd/clients-ca.pem	# require client certs
 *	allow_plain_http = no		# plain HTTP beyond loopback
 *	http_max_conns = 4096		# REST connections at a time
 *
 *	[fleet]				# fleet mode on etcd (doc/fleet.md)
 *	etcd = http://10.0.0.1:2379,http://10.0.0.2:2379
 *	key = /etc/certd/fleet.key	# 32 bytes, 0600, the same on every node
 *	keyring = /etc/certd/fleet-old.key	# more keys that open records
 *	node = gw1			# this host's name (default: host name)
 *	prefix = /certd			# of every etcd key
 *	ca = /etc/certd/etcd-ca.pem	# https:// endpoints: who signed etcd
 *	cert = /etc/certd/etcd-client.pem	# client certificate auth
 *	key_file = /etc/certd/etcd-client.key
 *
 *	[acl]				# socket permissions of non-admin peers
 *	user www-data = teams=web,api perms=read,key
 *	group ssl-cert = teams=* perms=read
 *	uid 1001 = teams=ops perms=read,write,key
 *
 * Every key of [certd] that is also a flag is the long option with '-'
 * written '_'; the keys of [fleet] are the flags --etcd, --fleet-key,
 * --node and --etcd-prefix.
 */
#ifndef CERTD_CONFIG_H
#define CERTD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "certd/constants.h"
#include "log.h"

#define ACL_READ	0x1
#define ACL_WRITE	0x2
#define ACL_KEY		0x4

/* One [acl] line: what a uid or gid may do in which teams. */
struct acl_rule {
	int		  is_group;	/* id is a gid, else a uid */
	unsigned long	  id;
	int		  all_teams;
	char		**teams;
	size_t		  n_teams;
	unsigned	  perms;	/* ACL_* */
};

struct config {
	char		*data_dir;
	char		*listen_host;
	uint16_t	 listen_port;
	char		*socket_path;	/* NULL: <data_dir>/certd.sock */
	char		*token_file;	/* NULL: <data_dir>/tokens */
	char		*master_key;	/* NULL: <data_dir>/master.key */
	enum log_level	 log_level;
	int		 log_syslog;	/* log_target = syslog */

	char		*socket_group;	/* NULL: the daemon's group */
	size_t		 frame_max;
	unsigned	 ctl_max_conns;
	unsigned	 ctl_max_conns_per_uid;
	unsigned	 ctl_idle_timeout;
	size_t		 ctl_out_limit;
	uint64_t	 log_retain;
	uint64_t	 history_keep;	/* versions kept for rollback */
	size_t		 cache_size;	/* RocksDB block cache, bytes */
	unsigned	 expiry_days[CERTD_EXPIRY_THRESHOLDS_MAX];	/* days */
	size_t		 n_expiry_days;
	unsigned	 expiry_scan_interval;	/* seconds */
	char		*tls_cert;	/* file or certd:TEAM/ALIAS; NULL: plain */
	char		*tls_key;
	char		*tls_client_ca;
	int		 allow_plain_http;
	size_t		 http_max_conns;
	/*
	 * --recover point-in-time: a damaged write-ahead log is replayed up
	 * to the damage.  A flag only, never a key of the file: a one-time
	 * act of an operator, not a way to run.
	 */
	int		 recover_pit;
	/* [fleet]: fleet mode when etcd is set */
	char		*etcd;		/* endpoints, comma-separated */
	char		*fleet_key;	/* NULL: <data_dir>/fleet.key */
	char		*node;		/* NULL: the host name */
	char		*etcd_prefix;	/* NULL: /certd */
	char		*etcd_ca;	/* TLS to etcd: NULL, the system's CAs */
	char		*etcd_cert;	/* client certificate, or NULL */
	char		*etcd_key;	/* its key (with etcd_cert) */
	char		*fleet_keyring;	/* more fleet keys: FILE[,FILE] */
	struct acl_rule	*acl;
	size_t		 n_acl;
};

/* Defaults; NULL on allocation failure. */
struct config	*config_new(void);
void		 config_free(struct config *cfg);

/*
 * Set one key ("data_dir", "listen", "socket", "token_file", "log_level").
 * Returns 0, or -1 with a reason in errbuf.
 */
int		 config_set(struct config *cfg, const char *key,
		    const char *value, char *errbuf, size_t errlen);

/*
 * Read a config file onto cfg.  Errors name the file and line.  As it
 * grants socket rights, the file must be owned by root or certd's uid and
 * writable by no one else (perm.h PERM_GRANTS); a link is followed.
 */
int		 config_load(struct config *cfg, const char *path,
		    char *errbuf, size_t errlen);

/* The union of the permissions rules grant uid (with groups) in team. */
unsigned	 config_acl_perms(const struct config *cfg, unsigned long uid,
		    const unsigned long *gids, size_t n_gids, const char *team);

/*
 * The union of the permissions rules grant uid (with groups) in any team:
 * 0 for a peer that no rule names.
 */
unsigned	 config_acl_any(const struct config *cfg, unsigned long uid,
		    const unsigned long *gids, size_t n_gids);

/* Socket path and token file with the data-dir defaults applied. */
char		*config_socket_path(const struct config *cfg);
char		*config_token_file(const struct config *cfg);

#endif
