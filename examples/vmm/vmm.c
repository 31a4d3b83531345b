/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the vCPU loops of every backend share: vCPU thread set-up (vmres needs
 * each dispatching thread registered), running with a time limit, stopping the
 * run, the clock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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
	enum vmm_run_end end;
	double timeout_s;
	struct vmm *vm;
};

static struct timespec after(double s)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += (time_t)s;
	t.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Wakes every second to look at the guest's progress (vm->progress), if any. */
static void *watchdog_thread(void *arg)
{
	struct watchdog *w = arg;
	struct vmm *vm = w->vm;
	const double start = vmm_now_ns();
	double last_change = start;
	uint64_t seen = vm->progress ? vm->progress(vm->progress_ctx) : 0;

	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		struct timespec until = after(1.0);
		double now;

		pthread_cond_timedwait(&w->cond, &w->lock, &until);
		if (w->done)
			break;
		now = vmm_now_ns();
		if (vm->progress) {
			uint64_t p = vm->progress(vm->progress_ctx);

			if (p != seen)
				seen = p, last_change = now;
			else if (now - last_change >= vm->stall_s * 1e9)
				w->end = VMM_RUN_STALLED;
		}
		if (now - start >= w->timeout_s * 1e9)
			w->end = VMM_RUN_TIMEOUT;
		if (w->end != VMM_RUN_ENDED) {
			vmm_request_stop(vm);
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

enum vmm_run_end vmm_run_until(struct vmm *vm, double timeout_s)
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
	return w.end;
}

int vmm_worker_init(struct vmm_worker *w)
{
	w->started = false;
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	return w->stop_fd < 0 ? -1 : 0;
}

int vmm_worker_start(struct vmm_worker *w, void *(*fn)(void *), void *arg, const char *what)
{
	if (pthread_create(&w->thread, NULL, fn, arg) != 0) {
		fprintf(stderr, "vmres-demo: %s: cannot start its thread\n", what);
		return -1;
	}
	w->started = true;
	return 0;
}

void vmm_worker_stop(struct vmm_worker *w)
{
	if (!w->started)
		return;
	if (eventfd_write(w->stop_fd, 1) == 0)
		pthread_join(w->thread, NULL);
	w->started = false;
}

void vmm_worker_free(struct vmm_worker *w)
{
	vmm_worker_stop(w);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
}
