/*
 * _common.h: what migtrace's two compiled readers share (the text scanner _scan.c and the
 * simple-backend record walk _simple.c), so each piece exists once:
 *
 *   Buffer    memory handed to Python through the buffer protocol, without a copy
 *   Column    a growable byte array (row columns, string storage, scratch space)
 *   Interner  interned strings: dense int32 ids in first-seen order, the strings stored back to
 *             back with int64 offsets, handed to Python as Arrow-compatible buffers
 *
 * Include it once per extension module, after Python.h, with BUFFER_TYPE_NAME defined to the
 * module's name for the Buffer type (e.g. "parsers._scan.Buffer"). Call buffer_type_ready()
 * from the module's init function before the first export.
 */
#ifndef MIGTRACE_COMMON_H
#define MIGTRACE_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef BUFFER_TYPE_NAME
#error "define BUFFER_TYPE_NAME before including _common.h"
#endif

#if defined(__GNUC__)
#define MT_UNUSED __attribute__((unused))
#else
#define MT_UNUSED
#endif

/* ------------------------------------------------------------------ owned memory as a buffer */

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t len;
    Py_ssize_t itemsize;
    char format[4];
    Py_ssize_t shape;
} BufferObject;

static void Buffer_dealloc(BufferObject *self) {
    free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Buffer_getbuffer(BufferObject *self, Py_buffer *view, int flags) {
    view->obj = (PyObject *)self;
    Py_INCREF(self);
    view->buf = self->data ? self->data : (void *)"";
    view->len = self->len;
    view->readonly = 0;
    view->itemsize = self->itemsize;
    view->format = (flags & PyBUF_FORMAT) ? self->format : NULL;
    view->ndim = 1;
    self->shape = self->itemsize ? self->len / self->itemsize : 0;
    view->shape = (flags & PyBUF_ND) ? &self->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? &view->itemsize : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyBufferProcs Buffer_as_buffer = {(getbufferproc)Buffer_getbuffer, NULL};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = BUFFER_TYPE_NAME,
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_as_buffer = &Buffer_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory handed over by a compiled reader, exposed through the buffer protocol.",
};

static MT_UNUSED int buffer_type_ready(void) { return PyType_Ready(&BufferType); }

/* A new Buffer owning data (freed with it); frees data itself when the object cannot be made. */
static PyObject *wrap_buffer(char *data, Py_ssize_t len, Py_ssize_t itemsize, const char *fmt) {
    BufferObject *b = PyObject_New(BufferObject, &BufferType);
    if (!b) {
        free(data);
        return NULL;
    }
    b->data = data;
    b->len = len;
    b->itemsize = itemsize;
    strncpy(b->format, fmt, sizeof(b->format) - 1);
    b->format[sizeof(b->format) - 1] = 0;
    b->shape = 0;
    return (PyObject *)b;
}

/* ------------------------------------------------------------------ growable column */

typedef struct {
    char *data;
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} Column;

static int col_reserve(Column *c, size_t extra) {
    if (c->len + extra <= c->cap) return 0;
    size_t ncap = c->cap ? c->cap : 65536;
    while (ncap < c->len + extra) ncap *= 2;
    char *n = realloc(c->data, ncap);
    if (!n) return -1;
    c->data = n;
    c->cap = ncap;
    return 0;
}

static inline MT_UNUSED int col_push(Column *c, const void *v, size_t n) {
    if (c->len + n > c->cap && col_reserve(c, n)) return -1;
    memcpy(c->data + c->len, v, n);
    c->len += n;
    return 0;
}

/* Hands the column's memory to Python as a Buffer and leaves the column empty. */
static PyObject *col_export(Column *c, Py_ssize_t itemsize, const char *fmt) {
    char *data = c->data;
    size_t len = c->len;
    if (data && len < c->cap) {
        char *shrunk = realloc(data, len ? len : 1);
        if (shrunk) data = shrunk;
    }
    c->data = NULL;
    c->len = c->cap = 0;
    return wrap_buffer(data, (Py_ssize_t)len, itemsize, fmt);
}

/* ------------------------------------------------------------------ interner */

/* Bytes of w that are NUL or non-ASCII have their high bit set in the result. */
static inline uint64_t odd_bytes(uint64_t w) {
    const uint64_t hi = 0x8080808080808080ull, lo = 0x0101010101010101ull;
    return (w & hi) | ((w - lo) & ~w & hi);
}

static inline uint64_t rotl64(uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }

/*
 * Hashes text s[0:n] and, in the same pass, sets *odd when a byte is NUL or non-ASCII (the only
 * bytes a text line may need repaired), so clean lines are read once.
 */
static inline MT_UNUSED uint64_t hash_bytes(const char *s, size_t n, int *odd) {
    /* Two independent multiply chains over 16-byte steps: a line's hash is not one long chain
     * of dependent multiplications, so it costs about half the latency. */
    const size_t total = n;
    uint64_t a = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    uint64_t b = 0xC2B2AE3D27D4EB4Full;
    uint64_t acc = 0;
    while (n >= 16) {
        uint64_t w1, w2;
        memcpy(&w1, s, 8);
        memcpy(&w2, s + 8, 8);
        acc |= odd_bytes(w1) | odd_bytes(w2);
        a = (a ^ w1) * 0x100000001B3ull;
        b = (b ^ w2) * 0x165667B19E3779F9ull;
        a ^= a >> 29;
        b ^= b >> 31;
        s += 16;
        n -= 16;
    }
    if (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        acc |= odd_bytes(w);
        a = (a ^ w) * 0x100000001B3ull;
        a ^= a >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    if (n && total >= 8) {
        /* The last 8 bytes in one load (some hashed already): no byte-wise copy, whose stores
         * the load would have to wait for. */
        memcpy(&tail, s + n - 8, 8);
        acc |= odd_bytes(tail);
    } else {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == 0 || c >= 0x80) acc = 1;
            tail |= (uint64_t)c << (8 * i);
        }
    }
    uint64_t h = (a ^ rotl64(b, 23) ^ tail) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 32;
    *odd = acc != 0;
    return h;
}

/*
 * Hashes binary s[0:n] in two independent multiply lanes over 16-byte steps (simple-backend
 * payloads are mostly 40-120 bytes). An interner must use one hash function for all its strings.
 */
static MT_UNUSED uint64_t hash_binary(const char *s, size_t n) {
    uint64_t a = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)n * UINT64_C(0xFF51AFD7ED558CCD));
    uint64_t b = UINT64_C(0xC2B2AE3D27D4EB4F);
    while (n >= 16) {
        uint64_t w1, w2;
        memcpy(&w1, s, 8);
        memcpy(&w2, s + 8, 8);
        a = rotl64((a ^ w1) * UINT64_C(0x100000001B3), 29);
        b = rotl64((b ^ w2) * UINT64_C(0x165667B19E3779F9), 31);
        s += 16;
        n -= 16;
    }
    uint64_t t1 = 0, t2 = 0;
    if (n > 8) {
        memcpy(&t1, s, 8);
        memcpy(&t2, s + 8, n - 8);
    } else {
        memcpy(&t1, s, n);
    }
    a = (a ^ t1) * UINT64_C(0x100000001B3);
    b = (b ^ t2) * UINT64_C(0x165667B19E3779F9);
    uint64_t h = a ^ rotl64(b, 32);
    h ^= h >> 29;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    h ^= h >> 32;
    return h;
}

/*
 * A slot holds the hash tag, the id and where the string lives, so a lookup touches the slot
 * and the string bytes only (two cache lines), not the offsets array too.
 */
typedef struct {
    uint32_t tag; /* high half of the hash */
    uint32_t id1; /* id + 1; 0 = empty */
    uint64_t loc; /* start << 24 | min(len, LEN_MAX) */
} Slot;

#define LEN_MAX 0xFFFFFFu

typedef struct {
    Slot *slots;
    size_t nslots; /* power of two */
    uint64_t *hashes;
    size_t hashes_cap;
    Column data;    /* concatenated strings */
    Column offsets; /* int64, count + 1 entries */
    size_t count;
} Interner;

static int interner_init(Interner *t) {
    memset(t, 0, sizeof(*t));
    t->nslots = 1024;
    t->slots = calloc(t->nslots, sizeof(Slot));
    if (!t->slots) return -1;
    int64_t zero = 0;
    return col_push(&t->offsets, &zero, sizeof(zero));
}

/* Forgets every string but keeps the memory, for a table that fills up again right away. */
static MT_UNUSED void interner_clear(Interner *t) {
    memset(t->slots, 0, t->nslots * sizeof(Slot));
    t->count = 0;
    t->data.len = 0;
    t->offsets.len = sizeof(int64_t); /* the leading 0 */
}

static void interner_free(Interner *t) {
    free(t->slots);
    free(t->hashes);
    free(t->data.data);
    free(t->offsets.data);
    memset(t, 0, sizeof(*t));
}

static inline MT_UNUSED const char *interner_str(const Interner *t, size_t id, size_t *len) {
    const int64_t *offs = (const int64_t *)t->offsets.data;
    *len = (size_t)(offs[id + 1] - offs[id]);
    return t->data.data + offs[id];
}

static Slot make_slot(const Interner *t, size_t id) {
    const int64_t *offs = (const int64_t *)t->offsets.data;
    uint64_t start = (uint64_t)offs[id], len = (uint64_t)(offs[id + 1] - offs[id]);
    Slot sl = {(uint32_t)(t->hashes[id] >> 32), (uint32_t)(id + 1),
               start << 24 | (len < LEN_MAX ? len : LEN_MAX)};
    return sl;
}

static int interner_grow(Interner *t) {
    size_t n = t->nslots * 2;
    Slot *slots = calloc(n, sizeof(Slot));
    if (!slots) return -1;
    for (size_t id = 0; id < t->count; id++) {
        /* Slots are written in random order: fetch the one a few ids ahead early. */
        if (id + 16 < t->count) __builtin_prefetch(&slots[(size_t)t->hashes[id + 16] & (n - 1)], 1);
        size_t i = (size_t)t->hashes[id] & (n - 1);
        while (slots[i].id1) i = (i + 1) & (n - 1);
        slots[i] = make_slot(t, id);
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    return 0;
}

/* The id of s[0:n] (whose hash is h), or -1 when it is not in the table; *free_slot: the
 * empty slot where it would go. */
static inline int32_t find_hashed(const Interner *t, const char *s, size_t n, uint64_t h,
                                  size_t *free_slot) {
    size_t mask = t->nslots - 1;
    size_t i = (size_t)h & mask;
    const uint32_t tag = (uint32_t)(h >> 32);
    for (;;) {
        const Slot *sl = &t->slots[i];
        if (!sl->id1) break;
        if (sl->tag == tag) {
            size_t id = sl->id1 - 1;
            size_t len = (size_t)(sl->loc & LEN_MAX);
            if (len == LEN_MAX) {
                const int64_t *offs = (const int64_t *)t->offsets.data;
                len = (size_t)(offs[id + 1] - offs[id]);
            }
            if (len == n && memcmp(t->data.data + (sl->loc >> 24), s, n) == 0) return (int32_t)id;
        }
        i = (i + 1) & mask;
    }
    *free_slot = i;
    return -1;
}

/* Adds s[0:n] (whose hash is h, not in the table) at the empty slot find_hashed() named;
 * returns its id, or -1 on memory exhaustion or when ids or storage would overflow. */
static int32_t interner_add(Interner *t, const char *s, size_t n, uint64_t h, size_t slot) {
    if (t->count >= 0x7FFFFFF0u) return -1;
    if (t->data.len + n >= ((uint64_t)1 << 40)) return -1;
    if (col_reserve(&t->data, n) || col_reserve(&t->offsets, sizeof(int64_t))) return -1;
    if (t->count + 1 > t->hashes_cap) {
        size_t cap = t->hashes_cap ? t->hashes_cap * 2 : 1024;
        uint64_t *nh = realloc(t->hashes, cap * sizeof(uint64_t));
        if (!nh) return -1;
        t->hashes = nh;
        t->hashes_cap = cap;
    }
    memcpy(t->data.data + t->data.len, s, n);
    t->data.len += n;
    int64_t end = (int64_t)t->data.len;
    memcpy(t->offsets.data + t->offsets.len, &end, sizeof(end));
    t->offsets.len += sizeof(int64_t);
    t->hashes[t->count] = h;
    size_t id = t->count++;
    if (t->count * 10 >= t->nslots * 7) {
        if (interner_grow(t)) return -1;
    } else {
        t->slots[slot] = make_slot(t, id);
    }
    return (int32_t)id;
}

/* Returns the id of s[0:n] (whose hash is h), adding it when new; -1 as interner_add(). */
static int32_t intern_hashed(Interner *t, const char *s, size_t n, uint64_t h) {
    size_t slot = 0;
    int32_t found = find_hashed(t, s, n, h, &slot);
    return found >= 0 ? found : interner_add(t, s, n, h, slot);
}

/* Interns text (hash_bytes); binary strings use intern_hashed with hash_binary throughout. */
static inline MT_UNUSED int32_t intern(Interner *t, const char *s, size_t n) {
    int odd;
    return intern_hashed(t, s, n, hash_bytes(s, n, &odd));
}

/*
 * Hands (count, offsets int64[count+1], data) to Python without copying and empties the
 * interner: ids restart at 0 afterwards, so call this only once everything has been interned.
 */
static MT_UNUSED PyObject *interner_export(Interner *t) {
    size_t count = t->count;
    PyObject *o = col_export(&t->offsets, 8, "q");
    PyObject *d = o ? col_export(&t->data, 1, "B") : NULL;
    interner_free(t);
    if (!o || !d || interner_init(t)) {
        Py_XDECREF(o);
        Py_XDECREF(d);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    PyObject *n = PyLong_FromSize_t(count);
    PyObject *r = n ? PyTuple_Pack(3, n, o, d) : NULL;
    Py_XDECREF(n);
    Py_DECREF(o);
    Py_DECREF(d);
    return r;
}

#endif /* MIGTRACE_COMMON_H */
