/*
 * Reference counting without atomics, for xpio.so's Embedded Swift build.
 *
 * Swift's retain and release are atomic read-modify-writes (`lock inc`,
 * `lock xadd`), about 20 cycles each, and a when_ call and a wake-up make
 * several: with them a when_read cost 1.22 times the floor's, without them
 * 1.17 (bench/micro). XPIO's Swift objects are used from one thread (the
 * one-thread contract, docs/ARCHITECTURE.md; the resolver's and the
 * reaper's threads are C and touch none), so the module is compiled with
 * -assume-single-threaded (Package.swift), which calls these functions.
 * The Embedded runtime linked into the module has none of them: here they
 * are its swift_retain and swift_release without the lock, on its object
 * header (the metadata pointer, then the count word; all bits but the top
 * one set: immortal). The last release goes to the runtime's own
 * swift_release, which deinitializes and frees.
 *
 * Until xpio_refcount_check has seen the runtime count a fresh object in
 * that word, one by one, they call the runtime's atomic functions: a
 * toolchain whose header differs makes the module slower, never wrong.
 */
#include "xpio_sys.h"

#if defined(XPIO_NONATOMIC_REFCOUNT)

typedef struct xpio_heap_object {
    const void *metadata;
    intptr_t count;
} xpio_heap_object;

extern void *swift_retain(void *object);
extern void swift_release(void *object);

static int header_known;

static int counted(const xpio_heap_object *o) {
    return (intptr_t)o > 0 && ((uintptr_t)~o->count << 1) != 0;
}

void xpio_refcount_check(void *object) {
    xpio_heap_object *o = object;
    intptr_t before = o->count;
    swift_retain(object);
    int added = o->count == before + 1;
    swift_release(object);
    header_known = before >= 1 && added && o->count == before && counted(o);
}

void *swift_nonatomic_retain(void *object) {
    if (!header_known) return swift_retain(object);
    xpio_heap_object *o = object;
    if (counted(o)) o->count += 1;
    return object;
}

void *swift_nonatomic_retain_n(void *object, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) swift_nonatomic_retain(object);
    return object;
}

void swift_nonatomic_release(void *object) {
    xpio_heap_object *o = object;
    if (!header_known || !counted(o) || ((o->count - 1) & INTPTR_MAX) == 0) swift_release(object);
    else o->count -= 1;
}

void swift_nonatomic_release_n(void *object, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) swift_nonatomic_release(object);
}

#else

void xpio_refcount_check(void *object) { (void)object; }

#endif
