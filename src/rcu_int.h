/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The RCU glue every RCU user in src/ shares (rcu.c): liburcu's memb flavour,
 * read side inlined through _LGPL_SOURCE, with the TSan hand-over described
 * below. Not installed.
 */
#ifndef VMRES_RCU_INT_H
#define VMRES_RCU_INT_H

#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>

#include <stdbool.h>
#include <stdint.h>

/* ThreadSanitizer cannot see liburcu's grace periods (the library is not
 * instrumented and readers synchronize through sys_membarrier), so under TSan
 * the pointer is published with C11 release/acquire (the same instructions on
 * x86) and every read-side exit "releases" a sync object that every deferred
 * free "acquires": exactly the ordering a grace period provides. */
#if defined(__SANITIZE_THREAD__)
#define VMRES__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VMRES__TSAN 1
#endif
#endif

#ifdef VMRES__TSAN
/* liburcu's inlined read side has benign races of its own (the grace-period
 * futex); under TSan call the uninstrumented library functions instead. */
#undef urcu_memb_read_lock
#undef urcu_memb_read_unlock
extern void urcu_memb_read_lock(void);
extern void urcu_memb_read_unlock(void);
#include <sanitizer/tsan_interface.h>
extern char vmres__tsan_grace;
#define vmres__rcu_load(p)     __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define vmres__rcu_store(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
#define vmres__tsan_release()  __tsan_release(&vmres__tsan_grace)
#define vmres__tsan_acquire()  __tsan_acquire(&vmres__tsan_grace)
#else
#define vmres__rcu_load(p)     rcu_dereference(p)
#define vmres__rcu_store(p, v) rcu_assign_pointer(p, v)
#define vmres__tsan_release()  ((void)0)
#define vmres__tsan_acquire()  ((void)0)
#endif

static inline void vmres__read_lock(void)
{
	urcu_memb_read_lock();
}

static inline void vmres__read_unlock(void)
{
	vmres__tsan_release();
	urcu_memb_read_unlock();
}

/* True when the calling thread is registered with liburcu (memb). */
static inline bool vmres__rcu_registered(void)
{
	return URCU_TLS(urcu_memb_reader).registered;
}

/* Register the calling thread with liburcu for good and arrange that its exit
 * unregisters it (a pthread key destructor): 0, or VMRES_ENOMEM (nothing
 * changed). Out of line and cold: each thread runs it once. */
int vmres__rcu_register_thread(void);

/* A lookup's entry check: a thread's first lookup or dispatch registers it, so
 * that no VMM has to. Registered threads pay what they paid before for the
 * check itself: one thread-local load and a branch predicted taken. */
static inline int vmres__rcu_reader(void)
{
	if (__builtin_expect(vmres__rcu_registered(), 1))
		return 0;
	return vmres__rcu_register_thread();
}

/* Writers and teardown may run on threads the VMM never registered (liburcu's
 * call_rcu and rcu_barrier use a read-side section internally): register such a
 * thread for the duration of the call. Returns true if it did. */
bool vmres__rcu_enter(void);
void vmres__rcu_leave(bool registered_here);

/* Wait until *@p pending (deferred frees queued, decremented by each callback)
 * drops to 0: rcu_barrier() (the TSan build polls). Not from a callback. */
void vmres__rcu_drain(uint64_t *pending);

/* call_rcu with the TSan hand-over; callbacks start with vmres__tsan_acquire(). */
void vmres__call_rcu(struct rcu_head *head, void (*fn)(struct rcu_head *head));

#endif /* VMRES_RCU_INT_H */
