/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the vCPU loops of every backend share: vCPU thread set-up (vmres needs
 * each dispatching thread registered), running with a time limit, stopping the
 * run, the clock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include <vmres/devmgr.h>

#include "vmm.h"

_Thread_local unsigned int vmm_this_cpu;

int vmm_vcpu_thread_enter(struct vmm *vm, unsigned int cpu)
{
	int rc = vmres_devmgr_thread_register();

	vmm_this_cpu = cpu;
	if (rc != 0) {
		fprintf(stderr, "vmres-demo: vcpu %u: vmres_devmgr_thread_register: %s\n", cpu,
			vmres_strerror(rc));
		vm->failed = true;
		vmm_request_stop(vm);
		return -1;
	}
	return 0;
}

void vmm_vcpu_thread_leave(void)
{
	vmres_devmgr_thread_unregister();
}

void vmm_request_stop(struct vmm *vm)
{
	atomic_store_explicit(&vm->stop, true, memory_order_release);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vm->backend->kick(vm, i);
}

double vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool fired;
	double timeout_s;
	struct vmm *vm;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)w->timeout_s;
	until.tv_nsec += (long)((w->timeout_s - (double)(time_t)w->timeout_s) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT)
			break;
	if (!w->done) {
		w->fired = true;
		vmm_request_stop(w->vm);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

bool vmm_run_until(struct vmm *vm, double timeout_s)
{
	struct watchdog w = {.timeout_s = timeout_s, .vm = vm};
	pthread_t t;
	bool started;

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	started = pthread_create(&t, NULL, watchdog_thread, &w) == 0;
	vm->backend->run(vm);
	if (started) {
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(t, NULL);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return w.fired;
}
