/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The out-of-line half of rcu_int.h: thread registration, writers on
 * unregistered threads, deferred frees and waiting for them. */
#include "rcu_int.h"
#include "common_int.h"

#include <pthread.h>
#include <time.h>

#include <vmres/common.h>

#ifdef VMRES__TSAN
char vmres__tsan_grace;
#endif

bool vmres__rcu_enter(void)
{
	if (vmres__rcu_registered())
		return false;
	urcu_memb_register_thread();
	return true;
}

void vmres__rcu_leave(bool registered_here)
{
	if (registered_here)
		urcu_memb_unregister_thread();
}

void vmres__rcu_drain(uint64_t *pending)
{
	bool here = vmres__rcu_enter();

	while (__atomic_load_n(pending, __ATOMIC_ACQUIRE)) {
#ifdef VMRES__TSAN
		/* liburcu's rcu_barrier() hands a block it allocates to the call_rcu
		 * thread, which frees it, through a queue TSan cannot see: wait by
		 * polling instead, so that TSan users need no suppressions. */
		nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 100000}, NULL);
#else
		urcu_memb_barrier();
#endif
	}
	vmres__rcu_leave(here);
	vmres__tsan_acquire();
}

void vmres__call_rcu(struct rcu_head *head, void (*fn)(struct rcu_head *head))
{
	vmres__tsan_release();
	urcu_memb_call_rcu(head, fn);
}

/* A thread registered by vmres has a non-NULL value under this key, so that
 * its exit runs unregister_at_exit() (before its thread-local storage, and so
 * liburcu's reader record, goes away). */
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_rc;

static void unregister_at_exit(void *unused)
{
	(void)unused;
	if (vmres__rcu_registered())
		urcu_memb_unregister_thread();
}

static void exit_key_create(void)
{
	exit_key_rc = pthread_key_create(&exit_key, unregister_at_exit);
}

int vmres__rcu_register_thread(void)
{
	pthread_once(&exit_key_once, exit_key_create);
	if (exit_key_rc || pthread_setspecific(exit_key, &exit_key))
		return vmres__fail(VMRES_ENOMEM, "no room to register the thread with liburcu "
						 "(pthread_key_create/pthread_setspecific failed)");
	urcu_memb_register_thread();
	return 0;
}
