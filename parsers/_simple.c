/*
 * _simple: the record walk of QEMU's binary "simple" trace backend (and of the headerless files
 * SystemTap's simpletrace tapset writes).
 *
 * Every record starts with a u64 record type; each record's length gives the next record's
 * offset, so the walk is sequential. A Walker takes buffers of the decompressed stream, walks
 * every complete record in them and appends one row per event record to growable columns
 * (timestamp, pid, event-name id, argument id, byte offset). Event names and argument payloads
 * are interned: an argument id stands for one distinct (event name, payload bytes) pair, stored
 * as "name" NUL "payload", so decoding later happens once per distinct pair.
 *
 * Record shapes (all integers in the file's byte order; the caller says which):
 *   header   u64 ~0, u64 magic, u64 version                    24 bytes
 *   mapping  u64 0, u64 event id, u32 n, n name bytes          20 + n bytes
 *   event    u64 1, u64 event id, u64 ns, u32 len, u32 pid, payload   8 + len bytes
 *            (len counts the 24 bytes from the event id to the pid plus the payload)
 *   dropped  an event record with id ~0 - 1 whose payload is the u64 count of lost events
 * The walk stops at the first record that cannot be right and reports its offset; policy
 * (warnings, what counts as truncated) belongs to parsers/simple.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REC_HEADER UINT64_C(0xFFFFFFFFFFFFFFFF)
#define REC_MAPPING UINT64_C(0)
#define REC_EVENT UINT64_C(1)
#define ID_DROPPED UINT64_C(0xFFFFFFFFFFFFFFFE)
#define MAGIC UINT64_C(0xF2B177CB0AA429B4)
#define SUPPORTED_VERSION 4
/* QEMU's ring buffer is 256 KiB and no record can be larger; real ones are under 6 KiB. */
#define MAX_RECORD (256 * 1024)
#define MAX_NAME 1024

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_BIG_ENDIAN 1
#else
#define HOST_BIG_ENDIAN 0
#endif

static inline uint64_t swap64(uint64_t v) { return __builtin_bswap64(v); }
static inline uint32_t swap32(uint32_t v) { return __builtin_bswap32(v); }

static inline uint64_t rd64(const unsigned char *p, int swap) {
    uint64_t v;
    memcpy(&v, p, 8);
    return swap ? swap64(v) : v;
}

static inline uint32_t rd32(const unsigned char *p, int swap) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? swap32(v) : v;
}

#define BUFFER_TYPE_NAME "parsers._simple.Buffer"
#include "_common.h"

static inline int32_t intern_binary(Interner *t, const char *s, size_t n) {
    return intern_hashed(t, s, n, hash_binary(s, n));
}

/* ------------------------------------------------------------------ event id -> name id */

typedef struct {
    uint64_t id;
    int32_t name1; /* name id + 1; 0 marks an empty slot */
} IdSlot;

typedef struct {
    IdSlot *slots;
    size_t nslots;
    size_t count;
} IdMap;

static inline size_t id_hash(uint64_t id) {
    id ^= id >> 33;
    id *= UINT64_C(0xFF51AFD7ED558CCD);
    id ^= id >> 33;
    return (size_t)id;
}

static int idmap_init(IdMap *m) {
    m->nslots = 16384;
    m->count = 0;
    m->slots = calloc(m->nslots, sizeof(IdSlot));
    return m->slots ? 0 : -1;
}

static void idmap_clear(IdMap *m) {
    memset(m->slots, 0, m->nslots * sizeof(IdSlot));
    m->count = 0;
}

static int32_t idmap_get(const IdMap *m, uint64_t id) {
    size_t mask = m->nslots - 1, i = id_hash(id) & mask;
    while (m->slots[i].name1) {
        if (m->slots[i].id == id) return m->slots[i].name1 - 1;
        i = (i + 1) & mask;
    }
    return -1;
}

static int idmap_put(IdMap *m, uint64_t id, int32_t name) {
    if ((m->count + 1) * 10 >= m->nslots * 7) {
        size_t n = m->nslots * 2;
        IdSlot *slots = calloc(n, sizeof(IdSlot));
        if (!slots) return -1;
        for (size_t k = 0; k < m->nslots; k++) {
            if (!m->slots[k].name1) continue;
            size_t j = id_hash(m->slots[k].id) & (n - 1);
            while (slots[j].name1) j = (j + 1) & (n - 1);
            slots[j] = m->slots[k];
        }
        free(m->slots);
        m->slots = slots;
        m->nslots = n;
    }
    size_t mask = m->nslots - 1, i = id_hash(id) & mask;
    while (m->slots[i].name1 && m->slots[i].id != id) i = (i + 1) & mask;
    if (!m->slots[i].name1) m->count++;
    m->slots[i].id = id;
    m->slots[i].name1 = name + 1;
    return 0;
}

/* ------------------------------------------------------------------ the walker */

typedef struct {
    PyObject_HEAD
    int swap;       /* file byte order differs from the host's */
    int headerless; /* SystemTap simpletrace: no header, no mappings, ids preset */
    IdMap ids;
    Interner names;
    Interner args;
    unsigned char *key; /* scratch: name NUL payload */
    /* per event row */
    Column ts, pid, name, argid, offset;
    /* dropped-events records: offset, count */
    Column drop_offset, drop_count;
    Column header_offset;
    uint64_t records, mappings, unmapped;
    int64_t first_unmapped;
    int nomem;
    int64_t error_offset;
    char error[200];
} Walker;

enum { WALK_OK = 0, WALK_ERROR = 1, WALK_NOMEM = 2 };

static int walker_error(Walker *w, int64_t offset, const char *msg) {
    w->error_offset = offset;
    snprintf(w->error, sizeof(w->error), "%s", msg);
    return WALK_ERROR;
}

static int is_identifier(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return n > 0;
}

static int32_t unmapped_name(Walker *w, uint64_t id) {
    char text[64];
    int n = snprintf(text, sizeof(text), "<unmapped id %llu>", (unsigned long long)id);
    int32_t code = intern_binary(&w->names, text, (size_t)n);
    if (code >= 0 && idmap_put(&w->ids, id, code)) return -1;
    return code;
}

static int walk_event(Walker *w, const unsigned char *r, uint32_t len, int64_t at) {
    uint64_t id = rd64(r + 8, w->swap);
    uint64_t ts = rd64(r + 16, w->swap);
    uint32_t pid = rd32(r + 28, w->swap);
    if (id == ID_DROPPED) {
        if (len < 32) return walker_error(w, at, "dropped-events record too short for its count");
        int64_t count = (int64_t)rd64(r + 32, w->swap);
        if (col_push(&w->drop_offset, &at, 8) || col_push(&w->drop_count, &count, 8))
            return WALK_NOMEM;
        return WALK_OK;
    }
    int32_t name = idmap_get(&w->ids, id);
    if (name < 0) {
        if (w->unmapped++ == 0) w->first_unmapped = at;
        name = unmapped_name(w, id);
        if (name < 0) return WALK_NOMEM;
    }
    const int64_t *noffs = (const int64_t *)w->names.offsets.data;
    size_t nlen = (size_t)(noffs[name + 1] - noffs[name]);
    size_t plen = len - 24;
    memcpy(w->key, w->names.data.data + noffs[name], nlen);
    w->key[nlen] = 0;
    memcpy(w->key + nlen + 1, r + 32, plen);
    int32_t arg = intern_binary(&w->args, (const char *)w->key, nlen + 1 + plen);
    if (arg < 0) return WALK_NOMEM;
    int64_t t = (int64_t)ts;
    int32_t p = (int32_t)pid;
    if (col_push(&w->ts, &t, 8) || col_push(&w->pid, &p, 4) || col_push(&w->name, &name, 4) ||
        col_push(&w->argid, &arg, 4) || col_push(&w->offset, &at, 8))
        return WALK_NOMEM;
    return WALK_OK;
}

/*
 * Walks the complete records of buf[0:len] (buf starts at file offset base). Sets *used to the
 * bytes consumed: everything up to an incomplete last record, or up to a bad record.
 */
static int walk(Walker *w, const unsigned char *buf, size_t len, int64_t base, size_t *used) {
    size_t p = 0;
    int rc = WALK_OK;
    char msg[160];
    while (p + 8 <= len) {
        const unsigned char *r = buf + p;
        size_t avail = len - p;
        int64_t at = base + (int64_t)p;
        uint64_t type = rd64(r, w->swap);
        if (type == REC_EVENT) {
            if (avail < 32) break;
            uint32_t rlen = rd32(r + 24, w->swap);
            if (rlen < 24 || rlen > MAX_RECORD) {
                snprintf(msg, sizeof(msg),
                         "event record length %u is impossible (24..%d): corrupt or not a trace",
                         rlen, MAX_RECORD);
                rc = walker_error(w, at, msg);
                break;
            }
            if (avail < 8 + (size_t)rlen) break;
            if ((rc = walk_event(w, r, rlen, at)) != WALK_OK) break;
            p += 8 + (size_t)rlen;
        } else if (type == REC_MAPPING && !w->headerless) {
            if (avail < 20) break;
            uint64_t id = rd64(r + 8, w->swap);
            uint32_t nlen = rd32(r + 16, w->swap);
            if (nlen == 0 || nlen > MAX_NAME) {
                snprintf(msg, sizeof(msg), "event-name mapping record with a %u-byte name", nlen);
                rc = walker_error(w, at, msg);
                break;
            }
            if (avail < 20 + (size_t)nlen) break;
            if (!is_identifier(r + 20, nlen)) {
                rc = walker_error(w, at, "event-name mapping record whose name is no identifier");
                break;
            }
            int32_t name = intern_binary(&w->names, (const char *)r + 20, nlen);
            if (name < 0 || idmap_put(&w->ids, id, name)) {
                rc = WALK_NOMEM;
                break;
            }
            w->mappings++;
            p += 20 + (size_t)nlen;
        } else if (type == REC_HEADER && !w->headerless) {
            if (avail < 24) break;
            uint64_t magic = rd64(r + 8, 0), version;
            uint64_t want = w->swap ? swap64(MAGIC) : MAGIC;
            if (magic != want) {
                rc = walker_error(w, at, magic == swap64(want)
                                             ? "header in the other byte order than the file's first"
                                             : "header record with a wrong magic number");
                break;
            }
            version = rd64(r + 16, w->swap);
            if (version != SUPPORTED_VERSION) {
                snprintf(msg, sizeof(msg),
                         "simple trace format version %llu is not supported (only version %d)",
                         (unsigned long long)version, SUPPORTED_VERSION);
                rc = walker_error(w, at, msg);
                break;
            }
            /* A re-opened file repeats header and mappings: ids count from the new table. */
            idmap_clear(&w->ids);
            if (col_push(&w->header_offset, &at, 8)) {
                rc = WALK_NOMEM;
                break;
            }
            p += 24;
        } else {
            snprintf(msg, sizeof(msg), "unknown record type 0x%llx: corrupt or not a %s trace",
                     (unsigned long long)type, w->headerless ? "simpletrace-stap" : "simple");
            rc = walker_error(w, at, msg);
            break;
        }
        w->records++;
    }
    *used = p;
    return rc;
}

static PyObject *Walker_feed(Walker *self, PyObject *args) {
    Py_buffer buf;
    long long base;
    if (!PyArg_ParseTuple(args, "y*L", &buf, &base)) return NULL;
    size_t used = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    rc = walk(self, buf.buf, (size_t)buf.len, (int64_t)base, &used);
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&buf);
    if (rc == WALK_NOMEM) return PyErr_NoMemory();
    if (rc == WALK_ERROR) return Py_BuildValue("(nLs)", (Py_ssize_t)used, (long long)self->error_offset, self->error);
    return Py_BuildValue("(nOO)", (Py_ssize_t)used, Py_None, Py_None);
}

static PyObject *Walker_preset(Walker *self, PyObject *names) {
    PyObject *seq = PySequence_Fast(names, "preset() takes a sequence of event names");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len);
        if (!s) {
            Py_DECREF(seq);
            return NULL;
        }
        if (len > MAX_NAME) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "event name too long");
            return NULL;
        }
        int32_t code = intern_binary(&self->names, s, (size_t)len);
        if (code < 0 || idmap_put(&self->ids, (uint64_t)i, code)) {
            Py_DECREF(seq);
            return PyErr_NoMemory();
        }
    }
    Py_DECREF(seq);
    Py_RETURN_NONE;
}

static int dict_put(PyObject *d, const char *key, PyObject *value) {
    if (!value) return -1;
    int rc = PyDict_SetItemString(d, key, value);
    Py_DECREF(value);
    return rc;
}

static PyObject *Walker_take(Walker *self, PyObject *unused) {
    (void)unused;
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    if (dict_put(d, "ts", col_export(&self->ts, 8, "q")) ||
        dict_put(d, "pid", col_export(&self->pid, 4, "i")) ||
        dict_put(d, "name", col_export(&self->name, 4, "i")) ||
        dict_put(d, "args", col_export(&self->argid, 4, "i")) ||
        dict_put(d, "offset", col_export(&self->offset, 8, "q")) ||
        dict_put(d, "drop_offset", col_export(&self->drop_offset, 8, "q")) ||
        dict_put(d, "drop_count", col_export(&self->drop_count, 8, "q")) ||
        dict_put(d, "header_offset", col_export(&self->header_offset, 8, "q")) ||
        dict_put(d, "names", interner_export(&self->names)) ||
        dict_put(d, "payloads", interner_export(&self->args)) ||
        dict_put(d, "records", PyLong_FromUnsignedLongLong(self->records)) ||
        dict_put(d, "mappings", PyLong_FromUnsignedLongLong(self->mappings)) ||
        dict_put(d, "unmapped", PyLong_FromUnsignedLongLong(self->unmapped)) ||
        dict_put(d, "first_unmapped", PyLong_FromLongLong(self->first_unmapped))) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static int Walker_init(Walker *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"big_endian", "headerless", NULL};
    int big = 0, headerless = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp", kwlist, &big, &headerless)) return -1;
    self->swap = big != HOST_BIG_ENDIAN;
    self->headerless = headerless;
    self->first_unmapped = -1;
    self->key = malloc(MAX_NAME + 1 + MAX_RECORD);
    if (!self->key || idmap_init(&self->ids) || interner_init(&self->names) ||
        interner_init(&self->args)) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Walker_dealloc(Walker *self) {
    Column *cols[] = {&self->ts,          &self->pid,         &self->name,
                      &self->argid,       &self->offset,      &self->drop_offset,
                      &self->drop_count,  &self->header_offset};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) free(cols[i]->data);
    interner_free(&self->names);
    interner_free(&self->args);
    free(self->ids.slots);
    free(self->key);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Walker_methods[] = {
    {"feed", (PyCFunction)Walker_feed, METH_VARARGS,
     "feed(buffer, base_offset) -> (bytes used, error offset or None, error message or None).\n"
     "Walks every complete record; an incomplete last record is left unused."},
    {"preset", (PyCFunction)Walker_preset, METH_O,
     "preset(names): event id i is names[i] (headerless files)."},
    {"take", (PyCFunction)Walker_take, METH_NOARGS,
     "Hands over the columns, tables and counters as a dict (call once, at the end)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WalkerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "parsers._simple.Walker",
    .tp_basicsize = sizeof(Walker),
    .tp_dealloc = (destructor)Walker_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Walker(big_endian=False, headerless=False): walks simple-backend records.",
    .tp_methods = Walker_methods,
    .tp_init = (initproc)Walker_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef simplemodule = {
    PyModuleDef_HEAD_INIT, "_simple", "Compiled record walk of QEMU's simple trace backend.", -1,
    NULL,
};

PyMODINIT_FUNC PyInit__simple(void) {
    if (buffer_type_ready() < 0 || PyType_Ready(&WalkerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&simplemodule);
    if (!m) return NULL;
    Py_INCREF(&WalkerType);
    if (PyModule_AddObject(m, "Walker", (PyObject *)&WalkerType) < 0) {
        Py_DECREF(&WalkerType);
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "MAX_RECORD", MAX_RECORD);
    PyModule_AddIntConstant(m, "MAX_NAME", MAX_NAME);
    return m;
}
