// SPDX-License-Identifier: MIT
/*
 * ep.c - URLs, and opening the process's endpoints: control (messages), serve
 * (read by peers; on shm a second one, serve2) and read (this process's reads),
 * with the domains, address vectors and completion queues they share.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>

#include "internal.h"
#include "log.h"
#include "shm.h"

#define CQ_SIZE 1024
#define FI_API FI_VERSION(1, 17)

static const char *const scheme_names[] = { "tcp", "shm", "verbs" };
static const char *const providers[] = { "tcp;ofi_rxm", "shm", "verbs;ofi_rxm" };

int weft__fab_parse_url(const char *url, enum scheme *scheme, char *host, size_t hostlen,
			char *port, size_t portlen)
{
	const char *rest, *colon;
	unsigned i;
	char *end;
	long n;

	if (!url)
		return -EINVAL;
	for (i = 0; i < sizeof(scheme_names) / sizeof(scheme_names[0]); i++) {
		size_t l = strlen(scheme_names[i]);

		if (!strncmp(url, scheme_names[i], l) && !strncmp(url + l, "://", 3))
			break;
	}
	if (i == sizeof(scheme_names) / sizeof(scheme_names[0]))
		return -EINVAL;
	*scheme = (enum scheme)i;
	rest = url + strlen(scheme_names[i]) + 3;
	colon = strrchr(rest, ':');
	if (!colon || colon == rest || (size_t)(colon - rest) >= hostlen)
		return -EINVAL;
	n = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || n < 0 || n > 65535 || strlen(colon + 1) >= portlen)
		return -EINVAL;
	memcpy(host, rest, colon - rest);
	host[colon - rest] = '\0';
	/* [v6] in URLs; getaddrinfo wants it bare. */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
	}
	snprintf(port, portlen, "%ld", n);
	return 0;
}

int weft__fab_url_of(enum scheme scheme, const void *addr, size_t len, char *buf,
		     size_t buflen)
{
	struct sockaddr_storage ss = { 0 };
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	char host[INET6_ADDRSTRLEN];
	unsigned port;

	/* A copy: an address inside a message is not aligned. */
	memcpy(&ss, addr, len < sizeof(ss) ? len : sizeof(ss));
	if (len >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, buflen, "%s://%s:%u", scheme_names[scheme], host, port);
		return 0;
	}
	if (len >= sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, buflen, "%s://[%s]:%u", scheme_names[scheme], host, port);
		return 0;
	}
	snprintf(buf, buflen, "%s://?", scheme_names[scheme]);
	return -EINVAL;
}

static int fi_err(int ret)
{
	return ret == -FI_ENODATA ? -ENODEV : ret < 0 ? ret : -EIO;
}

/* The provider's description, for @node:@service (or a shm name in @node). */
static int get_info(const char *prov, uint64_t caps, const char *node, const char *service,
		    struct fi_info **out)
{
	struct fi_info *hints = fi_dupinfo(NULL);	/* fi_allocinfo, through dl.c */
	int ret;

	if (!hints)
		return -ENOMEM;
	hints->ep_attr->type = FI_EP_RDM;
	hints->caps = caps;
	hints->mode = FI_CONTEXT | FI_CONTEXT2;
	hints->fabric_attr->prov_name = strdup(prov);
	hints->domain_attr->threading = FI_THREAD_DOMAIN;	/* one thread uses it */
	/* What each provider may ask of registrations: it answers with its own. */
	hints->domain_attr->mr_mode = FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY |
				      FI_MR_LOCAL;
	hints->domain_attr->mr_key_size = 8;
	/* Messages to a peer arrive in the order sent: sequence numbers rely on it. */
	hints->tx_attr->msg_order = FI_ORDER_SAS;
	hints->rx_attr->msg_order = FI_ORDER_SAS;
	ret = fi_getinfo(FI_API, node, service, FI_SOURCE, hints, out);
	fi_freeinfo(hints);
	return ret ? fi_err(ret) : 0;
}

static int dom_open(struct fab_dom *d, struct fi_info *info, bool want_fd)
{
	struct fi_cq_attr cqa = { .format = FI_CQ_FORMAT_DATA, .size = CQ_SIZE,
				  .wait_obj = want_fd ? FI_WAIT_FD : FI_WAIT_NONE };
	struct fi_av_attr ava = { .type = FI_AV_TABLE };
	int ret;

	d->info = info;
	d->fd = -1;
	ret = fi_fabric(info->fabric_attr, &d->fabric, NULL);
	if (ret)
		return fi_err(ret);
	ret = fi_domain(d->fabric, info, &d->domain, NULL);
	if (ret)
		return fi_err(ret);
	ret = fi_cq_open(d->domain, &cqa, &d->cq, NULL);
	if (ret == -FI_ENOSYS && want_fd) {
		/* No wait object (shm): progressed by polling while it matters. */
		cqa.wait_obj = FI_WAIT_NONE;
		want_fd = false;
		ret = fi_cq_open(d->domain, &cqa, &d->cq, NULL);
	}
	if (ret)
		return fi_err(ret);
	if (want_fd && (ret = fi_control(&d->cq->fid, FI_GETWAIT, &d->fd)))
		return fi_err(ret);
	ret = fi_av_open(d->domain, &ava, &d->av, NULL);
	return ret ? fi_err(ret) : 0;
}

static void dom_close(struct fab_dom *d)
{
	if (d->av)
		fi_close(&d->av->fid);
	if (d->cq)
		fi_close(&d->cq->fid);
	if (d->domain)
		fi_close(&d->domain->fid);
	if (d->fabric)
		fi_close(&d->fabric->fid);
	if (d->info)
		fi_freeinfo(d->info);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

/* A completion queue of @d, with a wait fd when @d's has one. */
static int cq_open(struct fab_dom *d, struct fid_cq **cq, int *fd)
{
	struct fi_cq_attr cqa = { .format = FI_CQ_FORMAT_DATA, .size = CQ_SIZE,
				  .wait_obj = d->fd >= 0 ? FI_WAIT_FD : FI_WAIT_NONE };
	int ret;

	*fd = -1;
	ret = fi_cq_open(d->domain, &cqa, cq, NULL);
	if (!ret && d->fd >= 0)
		ret = fi_control(&(*cq)->fid, FI_GETWAIT, fd);
	return ret ? fi_err(ret) : 0;
}

/*
 * An endpoint of @d described by @info (its source address set), enabled; on a
 * completion queue of its own if @own_cq.
 */
static int ep_open(struct fab_dom *d, struct fi_info *info, struct fab_ep *e, bool own_cq)
{
	struct fid_cq *cq = d->cq;
	int ret;

	e->fd = -1;
	if (own_cq) {
		ret = cq_open(d, &e->cq, &e->fd);
		if (ret)
			return ret;
		cq = e->cq;
	}
	ret = fi_endpoint(d->domain, info, &e->ep, NULL);
	if (ret)
		return fi_err(ret);
	if ((ret = fi_ep_bind(e->ep, &d->av->fid, 0)) ||
	    (ret = fi_ep_bind(e->ep, &cq->fid, FI_TRANSMIT | FI_RECV)) ||
	    (ret = fi_enable(e->ep)))
		return fi_err(ret);
	e->addrlen = sizeof(e->addr);
	ret = fi_getname(&e->ep->fid, e->addr, &e->addrlen);
	return ret ? fi_err(ret) : 0;
}

static void ep_close(struct fab_ep *e)
{
	if (e->ep)
		fi_close(&e->ep->fid);
	if (e->cq)
		fi_close(&e->cq->fid);
	memset(e, 0, sizeof(*e));
	e->fd = -1;
}

/* A data endpoint: on tcp and verbs beside control, port 0; on shm a fresh name. */
static int data_ep(struct weft__fabric *f, const char *host, struct fab_ep *e, bool own_cq)
{
	struct fi_info *info;
	char name[64];
	int ret;

	if (f->scheme == SCHEME_SHM) {
		snprintf(name, sizeof(name), "weft-%d-%u", (int)getpid(), f->shm_seq++);
		ret = get_info(providers[SCHEME_SHM], FI_RMA | FI_READ | FI_REMOTE_READ, name,
			       NULL, &info);
	} else {
		ret = get_info(providers[f->scheme], FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ |
			       FI_SOURCE, host, "0", &info);
	}
	if (ret)
		return ret;
	ret = ep_open(f->ddom, info, e, own_cq);
	fi_freeinfo(info);
	return ret;
}

/*
 * shm's regions are named after this process's pid (weft-PID-...): one killed
 * before it could remove its own leaves them in /dev/shm, and a process given the
 * pid again could open none ("Device or resource busy"). No living process has
 * our pid, so what bears it is stale: removed before this process's first. Once a
 * process (a forked child has its own pid), under a lock: its fabrics share them.
 */
static void remove_stale_regions(void)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static pid_t cleaned;

	pthread_mutex_lock(&lock);
	if (cleaned != getpid()) {
		weft__shm_remove(getpid());
		cleaned = getpid();
	}
	pthread_mutex_unlock(&lock);
}

int weft__fab_open_eps(struct weft__fabric *f, const char *host, const char *port)
{
	enum scheme cs = f->scheme == SCHEME_SHM ? SCHEME_TCP : f->scheme;
	struct fi_info *info;
	int ret;

	ret = get_info(providers[cs], FI_MSG | FI_RMA | FI_READ | FI_REMOTE_READ | FI_SOURCE,
		       host, port, &info);
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "fabric", "no %s endpoint at %s:%s: %s",
			  providers[cs], host, port, fi_strerror(-ret));
		return ret;
	}
	ret = dom_open(&f->cdom, info, true);
	if (!ret)
		ret = ep_open(&f->cdom, info, &f->ctrl, false);
	if (ret) {
		weft__log(WEFT_LOG_ERROR, "fabric", "opening %s at %s:%s: %s", providers[cs],
			  host, port, fi_strerror(-ret));
		return ret == -FI_EADDRINUSE ? -EADDRINUSE : ret;
	}
	f->ddom = &f->cdom;
	if (f->scheme == SCHEME_SHM) {
		char name[64];

		remove_stale_regions();
		snprintf(name, sizeof(name), "weft-%d-d", (int)getpid());
		ret = get_info(providers[SCHEME_SHM], FI_RMA | FI_READ | FI_REMOTE_READ, name,
			       NULL, &info);
		if (!ret)
			ret = dom_open(&f->shmdom, info, false);
		if (ret) {
			weft__log(WEFT_LOG_ERROR, "fabric", "no shm provider: %s",
				  fi_strerror(-ret));
			return ret;
		}
		f->ddom = &f->shmdom;
	}
	/*
	 * Only workers serve results, and the scheduler reads none: each data endpoint
	 * costs an open its bounce buffers are written in (rxm: about 30 ms).
	 */
	if (f->cfg.role == WEFT_ROLE_SCHEDULER)
		return 0;
	if (f->cfg.role == WEFT_ROLE_WORKER)
		ret = data_ep(f, host, &f->serve, false);
	if (!ret && f->cfg.role == WEFT_ROLE_WORKER && f->scheme == SCHEME_SHM)
		ret = data_ep(f, host, &f->serve2, false);
	if (!ret)
		ret = data_ep(f, host, &f->rd, true);
	if (ret)
		weft__log(WEFT_LOG_ERROR, "fabric", "opening the data endpoints: %s",
			  fi_strerror(-ret));
	return ret;
}

int weft__fab_shm_reader_open(const char *name, struct fab_dom *d, struct fab_ep *e)
{
	struct fi_info *info;
	int ret;

	ret = get_info(providers[SCHEME_SHM], FI_RMA | FI_READ | FI_REMOTE_READ, name, NULL,
		       &info);
	if (ret)
		return ret;
	ret = dom_open(d, info, false);		/* d owns info from here */
	if (!ret)
		ret = ep_open(d, info, e, false);
	if (ret)
		weft__fab_shm_reader_close(d, e);
	return ret;
}

void weft__fab_shm_reader_close(struct fab_dom *d, struct fab_ep *e)
{
	ep_close(e);
	dom_close(d);
}

int weft__fab_reopen_read(struct weft__fabric *f)
{
	char host[64] = "127.0.0.1";
	const struct sockaddr_in *in = (const struct sockaddr_in *)f->ctrl.addr;

	if (f->scheme != SCHEME_SHM && in->sin_family == AF_INET)
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
	ep_close(&f->rd);
	f->reopens++;
	return data_ep(f, host, &f->rd, true);
}

void weft__fab_close_eps(struct weft__fabric *f)
{
	ep_close(&f->rd);
	ep_close(&f->serve2);
	ep_close(&f->serve);
	ep_close(&f->ctrl);
	if (f->ddom == &f->shmdom)
		dom_close(&f->shmdom);
	dom_close(&f->cdom);
}
