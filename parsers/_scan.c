/*
 * _scan: the hot loop of migtrace's text trace readers.
 *
 * A Scanner walks buffers of complete lines and appends one row per physical line to growable
 * columns (kind, prefix era, timestamp, tid, thread-name id, event-name id, args id, flags).
 * Event names, argument texts, thread names and unparsed ("other") line texts are interned into
 * dense ids, so a million identical mutex lines cost four bytes each, and the Python side gets
 * Arrow-compatible (offsets, data) buffers without a per-line Python object.
 *
 * Line prefixes recognised, per line (QEMU's log backend across eras, SystemTap's log_stap):
 *   TID@SEC.USEC:name args                         (log, QEMU <= 10.0 with -msg timestamp=on)
 *   YYYY-MM-DDTHH:MM:SS[.f]Z name args             (log, QEMU >= 10.1 with -msg timestamp=on)
 *   [ISO ][[guest] ]prog(TID:thread name): name args   (log with the thread-info prefix)
 *   PID@NS name args                               (SystemTap log_stap)
 *   name args                                      (log without timestamps; "bare")
 * Everything else is an "other" line. The Python side owns all policy (which bare lines count as
 * events, how eras are reported); this file only splits bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_TYPE_NAME "parsers._scan.Buffer"
#include "_common.h"

enum { KIND_EVENT = 0, KIND_OTHER = 1, KIND_BARE = 2 };
enum {
    ERA_NONE = 0,
    ERA_TID_AT = 1,
    ERA_ISO = 2,
    ERA_THREAD_INFO = 3,
    ERA_STAP = 4,
};
/*
 * Row flags. BAD_TIME: the line's prefix has the shape of a timestamp whose value int64 ns
 * cannot hold (before 1677-09-21 or after 2262-04-11); such a line is kept as an "other" line.
 * BAD_ID: a thread id, process id or CPU number beyond 2^31 - 1; the line is read with that
 * value unknown (-1).
 */
enum { FLAG_BAD_UTF8 = 1, FLAG_TEXT_CUT = 2, FLAG_NO_NEWLINE = 4, FLAG_BAD_TIME = 8, FLAG_BAD_ID = 16 };

#define OTHER_TEXT_MAX 1024

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static int utf8_seq(const unsigned char *s, const unsigned char *end) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (end - s < n) return 0;
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int has_high_bit(const char *s, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull) return 1;
    }
    for (; i < n; i++)
        if ((unsigned char)s[i] & 0x80) return 1;
    return 0;
}

/*
 * Makes s[0:n] valid UTF-8: returns s itself when it already is, else a copy in *scratch where
 * each invalid byte became U+FFFD. NUL bytes also become U+FFFD (Arrow strings may hold them,
 * but they are never meaningful in a trace line). Sets *bad when anything was replaced.
 */
static const char *sanitize(const char *s, size_t n, size_t *out_n, Column *scratch, int *bad) {
    *out_n = n;
    if (!has_high_bit(s, n) && memchr(s, 0, n) == NULL) return s;
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    int clean = 1;
    for (const unsigned char *q = p; q < end;) {
        int k = *q ? utf8_seq(q, end) : 0;
        if (!k) {
            clean = 0;
            break;
        }
        q += k;
    }
    if (clean) return s;
    scratch->len = 0;
    if (col_reserve(scratch, n * 3)) return NULL;
    char *o = scratch->data;
    size_t m = 0;
    for (const unsigned char *q = p; q < end;) {
        int k = *q ? utf8_seq(q, end) : 0;
        if (k) {
            memcpy(o + m, q, (size_t)k);
            m += (size_t)k;
            q += k;
        } else {
            o[m++] = (char)0xEF;
            o[m++] = (char)0xBF;
            o[m++] = (char)0xBD;
            q++;
        }
    }
    *bad = 1;
    *out_n = m;
    return o;
}

/* ------------------------------------------------------------------ scanner */

typedef struct {
    PyObject_HEAD
    Column kind, era, flags; /* uint8 */
    Column ts;               /* int64, INT64_MIN = none */
    Column tid;              /* int32, -1 = none */
    Column tname;            /* int32 thread-name id, -1 = none */
    Column name;             /* int32 event-name id, -1 = other */
    Column args;             /* int32 args id (other lines: other-text id) */
    Interner names, threads, others;
    Interner bodies;    /* "name args" texts; a body id is an (event, args) pair id */
    Interner arg_texts; /* distinct argument texts (the args id of log and ftrace rows) */
    Interner *args_tab; /* where argument texts are interned: arg_texts, or a shared table */
    PyObject *args_owner; /* the scanner whose arg_texts args_tab is (share_args), or NULL */
    Column body_name;   /* int32 per body: event-name id */
    Column body_nlen;   /* uint32 per body: length of the name inside the body */
    Column body_args;   /* int32 per body: args id */
    int args_per_body;  /* LTTng: args ids are body ids (payloads are decoded per event) */
    Column scratch;
    size_t rows;
    size_t settled; /* rows whose args column holds args ids (settle_args) */
    size_t room;    /* rows every column can still take without growing */
    /* Filled by scan_ftrace / scan_lttng only (see below); the log scan leaves them empty. */
    Column pid;     /* int32 process id (ftrace TGID, LTTng vpid), -1 = none */
    Column cpu;     /* int32 CPU number, -1 = none */
    Column compose; /* a body assembled from two pieces of a line */
} ScannerObject;

/* Character classes by byte: one load per byte where names are walked (every line's). */
enum { CC_DIGIT = 1, CC_NAME_START = 2 };
#define CC_DIGITS ['0' ... '9'] = CC_DIGIT
#define CC_LETTERS ['a' ... 'z'] = CC_NAME_START, ['A' ... 'Z'] = CC_NAME_START, ['_'] = CC_NAME_START
static const uint8_t CHAR_CLASS[256] = {CC_DIGITS, CC_LETTERS};

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }
static inline int is_name_start(char c) { return CHAR_CLASS[(unsigned char)c] & CC_NAME_START; }
static inline int is_name_char(char c) { return CHAR_CLASS[(unsigned char)c] != 0; }

/* Parses up to 19 digits; returns the pointer after them, or NULL when there are none. */
static const char *parse_uint(const char *p, const char *end, uint64_t *v, int *ndigits) {
    uint64_t x = 0;
    int n = 0;
    while (p < end && is_digit(*p) && n < 19) {
        x = x * 10 + (uint64_t)(*p - '0');
        p++;
        n++;
    }
    if (!n || (p < end && is_digit(*p))) return NULL;
    *v = x;
    if (ndigits) *ndigits = n;
    return p;
}

static int64_t frac_to_ns(uint64_t frac, int digits) {
    static const int64_t scale[10] = {1000000000, 100000000, 10000000, 1000000, 100000,
                                      10000,      1000,      100,      10,      1};
    if (digits > 9) return -1;
    return (int64_t)frac * scale[digits];
}

/* sec * 10^9 + ns (0 <= ns < 10^9) into *out; 0 when int64 cannot hold it (or it is the
 * no-time marker INT64_MIN). */
static int checked_ns(int64_t sec, int64_t ns, int64_t *out) {
    int64_t v;
    if (sec < 0 && ns > 0) { /* the product alone may pass INT64_MIN where the sum does not */
        sec += 1;
        ns -= 1000000000;
    }
    if (__builtin_mul_overflow(sec, (int64_t)1000000000, &v) || __builtin_add_overflow(v, ns, &v) ||
        v == INT64_MIN)
        return 0;
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int two_digits(const char *p, int *v) {
    if (!is_digit(p[0]) || !is_digit(p[1])) return 0;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

/* YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM) followed by a space; returns the body start.
 * Sets *bad_time (and returns NULL) when the shape is right but int64 ns cannot hold the time. */
static const char *parse_iso(const char *p, const char *end, int64_t *ts, int *bad_time) {
    if (end - p < 21) return NULL;
    int y1, y2, mo, d, h, mi, s;
    if (!two_digits(p, &y1) || !two_digits(p + 2, &y2) || p[4] != '-' || !two_digits(p + 5, &mo) ||
        p[7] != '-' || !two_digits(p + 8, &d) || p[10] != 'T' || !two_digits(p + 11, &h) ||
        p[13] != ':' || !two_digits(p + 14, &mi) || p[16] != ':' || !two_digits(p + 17, &s))
        return NULL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return NULL;
    const char *q = p + 19;
    int64_t frac_ns = 0;
    if (q < end && *q == '.') {
        uint64_t f;
        int nd;
        q = parse_uint(q + 1, end, &f, &nd);
        if (!q || nd > 9) return NULL;
        frac_ns = frac_to_ns(f, nd);
    }
    int64_t offset_s = 0;
    if (q < end && *q == 'Z') {
        q++;
    } else if (q + 6 <= end && (*q == '+' || *q == '-') && q[3] == ':') {
        int oh, om;
        if (!two_digits(q + 1, &oh) || !two_digits(q + 4, &om)) return NULL;
        offset_s = (oh * 3600 + om * 60) * (*q == '+' ? 1 : -1);
        q += 6;
    } else {
        return NULL;
    }
    if (q >= end || *q != ' ') return NULL;
    int64_t days = days_from_civil(y1 * 100 + y2, mo, d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_s;
    if (!checked_ns(secs, frac_ns, ts)) {
        *bad_time = 1;
        return NULL;
    }
    return q + 1;
}

/*
 * "[guest name] prog(TID:thread name): " at p. Returns the body start and sets the tid (-1 and
 * *bad_id when it exceeds int32) and the thread-name span, or NULL when p does not start with
 * that prefix.
 */
static const char *parse_thread_info(const char *p, const char *end, int32_t *tid,
                                     const char **tn, size_t *tnlen, int *bad_id) {
    const char *q = p;
    if (q < end && *q == '[') {
        const char *close = NULL;
        for (const char *r = q + 1; r + 1 < end; r++) {
            if (r[0] == ']' && r[1] == ' ') {
                close = r;
                break;
            }
        }
        if (!close) return NULL;
        q = close + 2;
    }
    const char *prog = q;
    while (q < end && *q != '(' && *q != ' ') q++;
    if (q == prog || q >= end || *q != '(') return NULL;
    uint64_t t;
    q = parse_uint(q + 1, end, &t, NULL);
    if (!q || q >= end || *q != ':') return NULL;
    const char *name = q + 1;
    for (const char *r = name; r + 2 < end; r++) {
        if (r[0] == ')' && r[1] == ':' && r[2] == ' ') {
            *tid = t <= INT32_MAX ? (int32_t)t : -1;
            if (t > INT32_MAX) *bad_id = 1;
            *tn = name;
            *tnlen = (size_t)(r - name);
            return r + 3;
        }
    }
    return NULL;
}

typedef struct {
    uint8_t kind, era, flags;
    int64_t ts;
    int32_t tid, tname, name, args;
} Row;

static int reserve_rows(ScannerObject *s, size_t n) {
    if (col_reserve(&s->kind, n) || col_reserve(&s->era, n) || col_reserve(&s->flags, n) ||
        col_reserve(&s->ts, 8 * n) || col_reserve(&s->tid, 4 * n) ||
        col_reserve(&s->tname, 4 * n) || col_reserve(&s->name, 4 * n) ||
        col_reserve(&s->args, 4 * n))
        return -1;
    s->room = n;
    return 0;
}

/* The caller has reserved room (reserve_rows) for this row. */
static int push_row(ScannerObject *s, const Row *r) {
    s->kind.data[s->kind.len++] = (char)r->kind;
    s->era.data[s->era.len++] = (char)r->era;
    s->flags.data[s->flags.len++] = (char)r->flags;
    memcpy(s->ts.data + s->ts.len, &r->ts, 8);
    s->ts.len += 8;
    memcpy(s->tid.data + s->tid.len, &r->tid, 4);
    s->tid.len += 4;
    memcpy(s->tname.data + s->tname.len, &r->tname, 4);
    s->tname.len += 4;
    memcpy(s->name.data + s->name.len, &r->name, 4);
    s->name.len += 4;
    memcpy(s->args.data + s->args.len, &r->args, 4);
    s->args.len += 4;
    s->rows++;
    s->room--;
    return 0;
}

static int32_t intern_clean(ScannerObject *s, Interner *t, const char *p, size_t n, uint8_t *flags) {
    int odd;
    uint64_t h = hash_bytes(p, n, &odd);
    if (!odd) return intern_hashed(t, p, n, h);
    size_t m;
    int bad = 0;
    const char *c = sanitize(p, n, &m, &s->scratch, &bad);
    if (!c) return -1;
    if (bad) *flags |= FLAG_BAD_UTF8;
    return intern(t, c, m);
}

/*
 * Records what a new body holds: its event-name id (the name is the first nlen bytes of the
 * stored, repaired body) and where its argument text starts. Rows hold the body id in their
 * args column until settle_args() turns it into an args id.
 */
static int body_added(ScannerObject *s, int32_t body, size_t nlen) {
    size_t n;
    const char *b = interner_str(&s->bodies, (size_t)body, &n);
    int32_t nid = intern(&s->names, b, nlen);
    uint32_t nl = (uint32_t)nlen;
    if (nid < 0 || col_push(&s->body_name, &nid, 4) || col_push(&s->body_nlen, &nl, 4)) return -1;
    return 0;
}

static inline void body_row(const ScannerObject *s, int32_t body, Row *r) {
    memcpy(&r->name, s->body_name.data + 4 * (size_t)body, 4);
    r->args = body;
}

#define SETTLE_AHEAD 8
/* Hashes computed ahead wait here; twice the distance, so slot i is rewritten only after use. */
#define HASH_RING (2 * SETTLE_AHEAD)

/*
 * An args id stands for one distinct argument text, whatever the event, so the args table has
 * no duplicates and serves as categories as it is (an LTTng scan keeps body ids: its payloads
 * are decoded per event). This interns the argument texts of the bodies added since the last
 * call, in body order, with the hash slot of each prefetched a few bodies ahead (most texts of
 * a RAM-load trace are new, so nearly every lookup would otherwise wait on memory), then turns
 * the body ids in the args column of the rows not yet taken into args ids.
 */
static int settle_args(ScannerObject *s) {
    if (s->args_per_body) return 0;
    size_t from = s->body_args.len / 4, to = s->bodies.count;
    if (col_reserve(&s->body_args, (to - from) * 4 + 4)) return -1;
    int32_t *out = (int32_t *)s->body_args.data;
    const uint32_t *nlen = (const uint32_t *)s->body_nlen.data;
    uint64_t hs[HASH_RING];
    for (size_t i = from; i < to + SETTLE_AHEAD; i++) {
        if (i < to) {
            size_t n;
            const char *b = interner_str(&s->bodies, i, &n);
            size_t a = nlen[i] < n ? nlen[i] + 1 : n; /* past the blank after the name */
            int odd;
            uint64_t h = hash_bytes(b + a, n - a, &odd);
            hs[i % HASH_RING] = h;
            __builtin_prefetch(&s->args_tab->slots[(size_t)h & (s->args_tab->nslots - 1)]);
        }
        if (i >= from + SETTLE_AHEAD) {
            size_t j = i - SETTLE_AHEAD, n;
            const char *b = interner_str(&s->bodies, j, &n);
            size_t a = nlen[j] < n ? nlen[j] + 1 : n;
            int32_t id = intern_hashed(s->args_tab, b + a, n - a, hs[j % HASH_RING]);
            if (id < 0) return -1;
            out[j] = id;
        }
    }
    s->body_args.len = to * 4;
    const uint8_t *kind = (const uint8_t *)s->kind.data;
    int32_t *args = (int32_t *)s->args.data;
    for (size_t r = s->settled; r < s->rows; r++)
        if (kind[r] != KIND_OTHER && args[r] >= 0) args[r] = out[args[r]];
    s->settled = s->rows;
    return 0;
}

/*
 * A log line, parsed but not yet interned. Lines are parsed in small batches first and the hash
 * slot of each body is prefetched, so the interning pass that follows rarely waits on memory:
 * a trace has ~10^5 distinct bodies, whose table does not fit in the CPU caches.
 */
typedef struct {
    Row r;
    const char *p, *end; /* the line, without its newline and '\r' */
    const char *body;    /* after the prefix, or NULL when there was none */
    const char *tn;      /* thread name from the thread-info prefix */
    size_t tnlen;
    int32_t tid;
    int name_start;      /* the text after the prefix starts like an event name */
    uint64_t h;          /* hash of that text (when name_start) */
    int odd;             /* it has bytes that may need UTF-8 repair */
} LinePrep;

static void prep_line(const char *p, const char *end, int32_t default_tid, uint8_t extra_flags,
                      LinePrep *L) {
    if (end > p && end[-1] == '\r') end--;
    Row r = {KIND_OTHER, ERA_NONE, extra_flags, INT64_MIN, default_tid, -1, -1, -1};
    const char *body = NULL;
    int bad_time = 0, bad_id = 0;
    L->tn = NULL;
    L->tnlen = 0;
    L->tid = -1;

    if (p < end && is_digit(*p)) {
        uint64_t a, b, c;
        int nd;
        const char *q = parse_uint(p, end, &a, NULL);
        if (q && q < end && *q == '@') {
            const char *q2 = parse_uint(q + 1, end, &b, NULL);
            if (q2 && q2 < end && *q2 == '.') {
                const char *q3 = parse_uint(q2 + 1, end, &c, &nd);
                if (q3 && q3 < end && *q3 == ':' && nd <= 9) {
                    if (checked_ns((int64_t)b, frac_to_ns(c, nd), &r.ts)) {
                        r.era = ERA_TID_AT;
                        r.tid = a <= INT32_MAX ? (int32_t)a : -1;
                        bad_id = a > INT32_MAX;
                        body = q3 + 1;
                    } else {
                        bad_time = 1;
                    }
                }
            } else if (q2 && q2 < end && *q2 == ' ') {
                if (b <= (uint64_t)INT64_MAX) {
                    r.era = ERA_STAP;
                    /* SystemTap's pid(): the Python side relabels it as a pid */
                    r.tid = a <= INT32_MAX ? (int32_t)a : -1;
                    bad_id = a > INT32_MAX;
                    r.ts = (int64_t)b;
                    body = q2 + 1;
                } else {
                    bad_time = 1;
                }
            }
        } else {
            int64_t ts;
            const char *q4 = parse_iso(p, end, &ts, &bad_time);
            if (q4) {
                r.era = ERA_ISO;
                r.ts = ts;
                body = q4;
                const char *q5 =
                    parse_thread_info(body, end, &L->tid, &L->tn, &L->tnlen, &bad_id);
                if (q5) {
                    r.era = ERA_THREAD_INFO;
                    body = q5;
                }
            }
        }
    }
    if (!body && !bad_time) {
        const char *q5 = parse_thread_info(p, end, &L->tid, &L->tn, &L->tnlen, &bad_id);
        if (q5) {
            r.era = ERA_THREAD_INFO;
            body = q5;
        }
    }
    if (bad_time) r.ts = INT64_MIN;
    r.flags |= (bad_time ? FLAG_BAD_TIME : 0) | (bad_id ? FLAG_BAD_ID : 0);
    L->p = p;
    L->end = end;
    L->body = body;
    const char *b = body ? body : p;
    L->name_start = !bad_time && b < end && is_name_start(*b);
    if (L->name_start) L->h = hash_bytes(b, (size_t)(end - b), &L->odd);
    L->r = r;
}

/* The end of the event name at b when the text is event-shaped ("name" or "name args"), else
 * NULL. */
static const char *event_name_end(const char *b, const char *end) {
    const char *q = b;
    while (q < end && is_name_char(*q)) q++;
    return q == end || *q == ' ' ? q : NULL;
}

/* Interns a prepared line and appends its row. Returns 0, or -1 on memory exhaustion. */
static int finish_line(ScannerObject *s, LinePrep *L) {
    Row *r = &L->r;
    if (L->tn) {
        r->tid = L->tid;
        r->tname = intern_clean(s, &s->threads, L->tn, L->tnlen, &r->flags);
        if (r->tname < 0) return -1;
    }
    const char *b = L->body ? L->body : L->p;
    size_t n = (size_t)(L->end - b);
    int32_t body = -1;
    size_t slot = 0;
    if (L->name_start && !L->odd) {
        /* One lookup per line: a body seen before was event-shaped then (the log grammar
         * interns no other text as a body, and a scanner reads one grammar), so its name need
         * not be walked again. */
        body = find_hashed(&s->bodies, b, n, L->h, &slot);
    }
    const char *name_end = body < 0 && L->name_start ? event_name_end(b, L->end) : NULL;
    if (body >= 0 || name_end) {
        r->kind = L->body ? KIND_EVENT : KIND_BARE;
        if (name_end) {
            size_t before = s->bodies.count;
            body = L->odd ? intern_clean(s, &s->bodies, b, n, &r->flags)
                          : interner_add(&s->bodies, b, n, L->h, slot);
            if (body < 0) return -1;
            /* The name is ASCII (name characters only), so repair never changes its length. */
            if (s->bodies.count != before && body_added(s, body, (size_t)(name_end - b))) return -1;
        }
        body_row(s, body, r);
        return push_row(s, r);
    }
    /* Not an event: keep the whole line (cut to OTHER_TEXT_MAX bytes) as an "other" line. */
    r->kind = KIND_OTHER;
    r->name = -1;
    size_t line_len = (size_t)(L->end - L->p);
    if (line_len > OTHER_TEXT_MAX) {
        line_len = OTHER_TEXT_MAX;
        r->flags |= FLAG_TEXT_CUT;
    }
    r->args = intern_clean(s, &s->others, L->p, line_len, &r->flags);
    if (r->args < 0) return -1;
    return push_row(s, r);
}

#define PREP_BATCH 16

static PyObject *Scanner_scan(ScannerObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"data", "default_tid", "final", NULL};
    Py_buffer buf;
    int default_tid = -1;
    int final = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|ip", kwlist, &buf, &default_tid, &final))
        return NULL;
    const char *p = buf.buf, *end = p + buf.len;
    size_t before = self->rows;
    int failed = 0;
    LinePrep batch[PREP_BATCH];
    Py_BEGIN_ALLOW_THREADS;
    while (p < end && !failed) {
        int n = 0;
        while (n < PREP_BATCH && p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            /* The caller hands complete lines; a tail without newline is the file's last line. */
            const char *line_end = nl ? nl : end;
            prep_line(p, line_end, default_tid, (!nl && final) ? FLAG_NO_NEWLINE : 0, &batch[n]);
            if (batch[n].name_start) {
                const Interner *t = &self->bodies;
                __builtin_prefetch(&t->slots[(size_t)batch[n].h & (t->nslots - 1)]);
            }
            n++;
            p = nl ? nl + 1 : end;
        }
        if (self->room < (size_t)n && reserve_rows(self, 65536)) {
            failed = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (finish_line(self, &batch[i])) {
                failed = 1;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&buf);
    if (failed) return PyErr_NoMemory();
    return PyLong_FromSize_t(self->rows - before);
}

/* ------------------------------------------------------------------ ftrace and LTTng text */

/*
 * Two more line grammars share the scanner's interners and columns (scan_ftrace, scan_lttng).
 * Their rows also fill the pid and cpu columns, which the log scan leaves empty.
 *
 *   ftrace (tracefs `trace` / `trace_pipe`, and `trace-cmd report`):
 *     COMM-TID [(TGID)] [CPU] [FLAGS] SEC.FRAC: EVENT: REST
 *     COMM may hold blanks and dashes: the TID is the number after the dash that is followed by
 *     blanks and "(" or "[". REST of tracing_mark_write (and of trace-cmd's "print: IP: ") is a
 *     QEMU body "name args"; any other EVENT is a kernel event, kept as the body "EVENT REST".
 *     Lines starting with '#' are header lines.
 *   LTTng as printed by babeltrace / babeltrace2 (text.pretty sink):
 *     [TIME] [(+DELTA)] [HOST...] PROVIDER:EVENT: [{ CONTEXT }, ...] { PAYLOAD }
 *     TIME is HH:MM:SS.NS, YYYY-MM-DD HH:MM:SS.NS, SEC.NS, 20-digit cycles or ??:??:??.?????????.
 *     The payload is the last block; vtid/tid, vpid/pid, procname and cpu_id are read from the
 *     blocks before it. The body interned is "PROVIDER:EVENT PAYLOAD".
 */
enum { KIND_KERNEL = 3, KIND_HEADER = 4 };
enum {
    ERA_FTRACE = 5,
    ERA_FTRACE_TGID = 6,
    ERA_FTRACE_NOFLAGS = 7,
    ERA_FTRACE_NOFLAGS_TGID = 8,
    ERA_LTTNG_TIME_OF_DAY = 9,
    ERA_LTTNG_DATE = 10,
    ERA_LTTNG_SECONDS = 11,
    ERA_LTTNG_CYCLES = 12,
    ERA_LTTNG_NO_CLOCK = 13,
};

#define FTRACE_TASK_MAX 64 /* the task column is 16 wide; allow some slack, bound the search */
#define MARKER_EVENT "tracing_mark_write"

static int push_ext(ScannerObject *s, const Row *r, int32_t pid, int32_t cpu) {
    if (col_reserve(&s->pid, 4) || col_reserve(&s->cpu, 4)) return -1;
    memcpy(s->pid.data + s->pid.len, &pid, 4);
    s->pid.len += 4;
    memcpy(s->cpu.data + s->cpu.len, &cpu, 4);
    s->cpu.len += 4;
    return push_row(s, r);
}

/* The length of s[0:n] once repaired as sanitize() repairs it. */
static size_t repaired_len(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t m = 0;
    while (p < end) {
        int k = *p ? utf8_seq(p, end) : 0;
        m += k ? (size_t)k : 3;
        p += k ? k : 1;
    }
    return m;
}

/* Interns b[0:n] (its first nlen bytes are the event name) as a body; sets r->args and r->name. */
static int intern_body(ScannerObject *s, const char *b, size_t n, size_t nlen, Row *r) {
    size_t before = s->bodies.count;
    int32_t body = intern_clean(s, &s->bodies, b, n, &r->flags);
    if (body < 0) return -1;
    if (s->bodies.count != before) {
        /* An LTTng event word may hold any byte: find where the repaired name ends. A blank
         * follows the name, so no UTF-8 sequence spans the boundary. */
        size_t clean_nlen = (has_high_bit(b, nlen) || memchr(b, 0, nlen)) ? repaired_len(b, nlen)
                                                                          : nlen;
        if (body_added(s, body, clean_nlen)) return -1;
    }
    body_row(s, body, r);
    return 0;
}

/* Interns NAME + ' ' + REST, two pieces that are not adjacent in the line. */
static int intern_composed(ScannerObject *s, const char *name, size_t nlen, const char *rest,
                           size_t rlen, Row *r) {
    s->compose.len = 0;
    if (col_reserve(&s->compose, nlen + 1 + rlen)) return -1;
    memcpy(s->compose.data, name, nlen);
    s->compose.data[nlen] = ' ';
    memcpy(s->compose.data + nlen + 1, rest, rlen);
    return intern_body(s, s->compose.data, nlen + 1 + rlen, nlen, r);
}

/* Keeps the whole line (cut to OTHER_TEXT_MAX bytes) as an "other" line. */
static int push_other(ScannerObject *s, const char *p, const char *end, uint8_t flags) {
    Row r = {KIND_OTHER, ERA_NONE, flags, INT64_MIN, -1, -1, -1, -1};
    size_t n = (size_t)(end - p);
    if (n > OTHER_TEXT_MAX) {
        n = OTHER_TEXT_MAX;
        r.flags |= FLAG_TEXT_CUT;
    }
    r.args = intern_clean(s, &s->others, p, n, &r.flags);
    if (r.args < 0) return -1;
    return push_ext(s, &r, -1, -1);
}

/* A tid, pid or CPU number: v when int32 holds it, else -1 (unknown) with FLAG_BAD_ID. */
static int32_t id_or_unknown(uint64_t v, uint8_t *flags) {
    if (v <= INT32_MAX) return (int32_t)v;
    *flags |= FLAG_BAD_ID;
    return -1;
}

static const char *skip_blanks(const char *p, const char *end) {
    while (p < end && *p == ' ') p++;
    return p;
}

/* SEC.FRAC: (1..9 fraction digits) at p; returns the pointer after the colon. */
static const char *parse_sec_frac_colon(const char *p, const char *end, int64_t *ts) {
    uint64_t sec, frac;
    int nd;
    const char *q = parse_uint(p, end, &sec, NULL);
    if (!q || q >= end || *q != '.' || sec > 9000000000ull) return NULL;
    q = parse_uint(q + 1, end, &frac, &nd);
    if (!q || nd > 9 || q >= end || *q != ':') return NULL;
    *ts = (int64_t)sec * 1000000000LL + frac_to_ns(frac, nd);
    return q + 1;
}

static int ftrace_line(ScannerObject *s, const char *p, const char *end, uint8_t extra_flags) {
    if (end > p && end[-1] == '\r') end--;
    if (p < end && *p == '#') {
        Row h = {KIND_HEADER, ERA_NONE, extra_flags, INT64_MIN, -1, -1, -1, -1};
        return push_ext(s, &h, -1, -1);
    }
    Row r = {KIND_EVENT, ERA_FTRACE, extra_flags, INT64_MIN, -1, -1, -1, -1};
    int32_t pid = -1, cpu = -1;
    const char *task = skip_blanks(p, end);
    const char *dash = NULL, *q = NULL;
    uint64_t v;
    for (const char *d = task; d < end && d - task <= FTRACE_TASK_MAX; d++) {
        if (*d != '-') continue;
        const char *t = parse_uint(d + 1, end, &v, NULL);
        if (!t || t >= end || *t != ' ') continue;
        t = skip_blanks(t, end);
        if (t < end && (*t == '(' || *t == '[')) {
            dash = d;
            q = t;
            break;
        }
    }
    if (!dash) return push_other(s, p, end, extra_flags);
    r.tid = id_or_unknown(v, &r.flags);
    int has_tgid = 0;
    if (*q == '(') {
        q = skip_blanks(q + 1, end);
        const char *t = parse_uint(q, end, &v, NULL);
        if (t) {
            pid = id_or_unknown(v, &r.flags);
        } else {
            t = q;
            while (t < end && *t == '-') t++;
            if (t == q) return push_other(s, p, end, extra_flags);
        }
        if (t >= end || *t != ')') return push_other(s, p, end, extra_flags);
        q = skip_blanks(t + 1, end);
        has_tgid = 1;
    }
    if (q >= end || *q != '[') return push_other(s, p, end, extra_flags);
    const char *t = parse_uint(q + 1, end, &v, NULL);
    if (!t || t >= end || *t != ']') return push_other(s, p, end, extra_flags);
    cpu = id_or_unknown(v, &r.flags);
    q = skip_blanks(t + 1, end);
    int has_flags = 0;
    const char *after = parse_sec_frac_colon(q, end, &r.ts);
    if (!after) {
        const char *f = q;
        while (f < end && *f != ' ') f++;
        if (f - q < 1 || f - q > 8) return push_other(s, p, end, extra_flags);
        after = parse_sec_frac_colon(skip_blanks(f, end), end, &r.ts);
        if (!after) return push_other(s, p, end, extra_flags);
        has_flags = 1;
    }
    r.era = has_flags ? (has_tgid ? ERA_FTRACE_TGID : ERA_FTRACE)
                      : (has_tgid ? ERA_FTRACE_NOFLAGS_TGID : ERA_FTRACE_NOFLAGS);
    const char *ev = skip_blanks(after, end);
    if (ev == after) return push_other(s, p, end, extra_flags);
    const char *ev_end = ev;
    while (ev_end < end && is_name_char(*ev_end)) ev_end++;
    if (ev_end == ev || ev_end >= end || *ev_end != ':') return push_other(s, p, end, extra_flags);
    size_t ev_len = (size_t)(ev_end - ev);
    const char *rest = ev_end + 1;
    int marker = 0;
    if (ev_len == sizeof(MARKER_EVENT) - 1 && memcmp(ev, MARKER_EVENT, ev_len) == 0) {
        marker = 1;
        if (rest < end && *rest == ' ') rest++;
    } else if (ev_len == 5 && memcmp(ev, "print", 5) == 0) {
        /* trace-cmd: "print:" padded, then the writer's symbol ("tracing_mark_write: ") */
        rest = skip_blanks(rest, end);
        const char *sym = rest;
        while (sym < end && (is_name_char(*sym) || *sym == '.')) sym++;
        if (sym > rest && sym + 1 < end && sym[0] == ':' && sym[1] == ' ') rest = sym + 2;
        marker = 1;
    }
    /* The task name: intern it before the body so both share one pass over the line. */
    r.tname = intern_clean(s, &s->threads, task, (size_t)(dash - task), &r.flags);
    if (r.tname < 0) return -1;
    if (marker) {
        const char *n = rest;
        if (n < end && is_name_start(*n)) {
            while (n < end && is_name_char(*n)) n++;
            if (n == end || *n == ' ') {
                if (intern_body(s, rest, (size_t)(end - rest), (size_t)(n - rest), &r)) return -1;
                return push_ext(s, &r, pid, cpu);
            }
        }
        r.kind = KIND_KERNEL;
        if (intern_composed(s, MARKER_EVENT, sizeof(MARKER_EVENT) - 1, rest,
                            (size_t)(end - rest), &r))
            return -1;
        return push_ext(s, &r, pid, cpu);
    }
    r.kind = KIND_KERNEL;
    rest = skip_blanks(rest, end);
    if (intern_composed(s, ev, ev_len, rest, (size_t)(end - rest), &r)) return -1;
    return push_ext(s, &r, pid, cpu);
}

/* True when the bytes at p close a quoted value: end of line, " }", " ]" or ", NAME = ". */
static int closes_string(const char *p, const char *end) {
    if (p == end) return 1;
    if (end - p >= 2 && p[0] == ' ' && (p[1] == '}' || p[1] == ']')) return 1;
    if (end - p < 2 || p[0] != ',' || p[1] != ' ') return 0;
    const char *q = p + 2;
    if (q >= end || !is_name_start(*q)) return 0;
    while (q < end && is_name_char(*q)) q++;
    return end - q >= 3 && q[0] == ' ' && q[1] == '=' && q[2] == ' ';
}

/*
 * The end of the quoted value starting at p (just past its closing quote), or NULL.
 * babeltrace2 escapes quotes inside strings; babeltrace 1 prints them raw, so a quote only
 * closes the value when what follows it can follow a value.
 */
static const char *string_end(const char *p, const char *end) {
    for (const char *q = p + 1; q < end; q++) {
        if (*q == '\\') {
            q++;
            continue;
        }
        if (*q == '"' && closes_string(q + 1, end)) return q + 1;
    }
    return NULL;
}

/* The end of the { ... } block starting at p (just past its closing brace), or NULL. */
static const char *block_end(const char *p, const char *end) {
    int depth = 0;
    for (const char *q = p; q < end; q++) {
        if (*q == '"') {
            const char *e = string_end(q, end);
            if (!e) return NULL;
            q = e - 1;
        } else if (*q == '{') {
            depth++;
        } else if (*q == '}') {
            if (--depth == 0) return q + 1;
        }
    }
    return NULL;
}

typedef struct {
    int32_t tid, pid, cpu;
    const char *procname;
    size_t procname_len;
    int bad_id; /* an id field held a number beyond int32 */
} LttngContext;

/* Reads the identity fields of one context block [p, e): "{ name = value, ... }". */
static void lttng_context(const char *p, const char *e, LttngContext *ctx) {
    const char *q = p + 1;
    while (q < e) {
        q = skip_blanks(q, e);
        const char *name = q;
        while (q < e && is_name_char(*q)) q++;
        size_t nlen = (size_t)(q - name);
        if (!nlen || e - q < 3 || q[0] != ' ' || q[1] != '=' || q[2] != ' ') return;
        q += 3;
        const char *val = q, *val_end;
        if (q < e && *q == '"') {
            val_end = string_end(q, e);
            if (!val_end) return;
            q = val_end;
        } else {
            while (q < e && *q != ',' && *q != ' ') q++;
            val_end = q;
        }
        /* A number: digits only. One beyond int32 (or of 20 digits and more) is unknown, -1. */
        int is_num = val < val_end;
        for (const char *c = val; c < val_end && is_num; c++) is_num = is_digit(*c);
        int32_t num = -1;
        if (is_num) {
            uint64_t v;
            int big = parse_uint(val, val_end, &v, NULL) != val_end || v > INT32_MAX;
            num = big ? -1 : (int32_t)v;
        }
#define NAME_IS(lit) (nlen == sizeof(lit) - 1 && memcmp(name, lit, nlen) == 0)
        int id_field = 1;
        if ((NAME_IS("vtid") || NAME_IS("tid")) && is_num) {
            ctx->tid = num;
        } else if ((NAME_IS("vpid") || NAME_IS("pid")) && is_num) {
            ctx->pid = num;
        } else if (NAME_IS("cpu_id") && is_num) {
            ctx->cpu = num;
        } else {
            id_field = 0;
        }
        if (id_field && num < 0) ctx->bad_id = 1;
        if (!id_field && NAME_IS("procname") && val_end - val >= 2 && *val == '"') {
            ctx->procname = val + 1;
            ctx->procname_len = (size_t)(val_end - val - 2);
        }
#undef NAME_IS
        if (q < e && *q == ',') q++;
        else return;
    }
}

/* The [TIME] of a babeltrace line: sets the era and the time (ns) and returns 1; returns 0 when
 * unknown, 2 when its value is beyond int64 ns. */
static int lttng_time(const char *p, const char *e, uint8_t *era, int64_t *ts) {
    size_t n = (size_t)(e - p);
    int h, mi, sec;
    uint64_t frac, whole;
    int nd;
    if (n == 18 && memcmp(p, "??:??:??.?????????", 18) == 0) {
        *era = ERA_LTTNG_NO_CLOCK;
        *ts = INT64_MIN;
        return 1;
    }
    const char *t = p;
    int64_t days = 0;
    uint8_t which = ERA_LTTNG_TIME_OF_DAY;
    if (n == 29 && p[4] == '-' && p[7] == '-' && p[10] == ' ') {
        int y1, y2, mo, d;
        if (!two_digits(p, &y1) || !two_digits(p + 2, &y2) || !two_digits(p + 5, &mo) ||
            !two_digits(p + 8, &d) || mo < 1 || mo > 12 || d < 1 || d > 31 || y1 + y2 == 0)
            return 0;
        days = days_from_civil(y1 * 100 + y2, mo, d);
        which = ERA_LTTNG_DATE;
        t = p + 11;
        n -= 11;
    }
    if (n == 18 && t[2] == ':' && t[5] == ':' && t[8] == '.') {
        if (!two_digits(t, &h) || !two_digits(t + 3, &mi) || !two_digits(t + 6, &sec) || h > 23 ||
            mi > 59 || sec > 60)
            return 0;
        const char *f = parse_uint(t + 9, e, &frac, &nd);
        if (f != e || nd != 9) return 0;
        if (!checked_ns(days * 86400 + h * 3600 + mi * 60 + sec, (int64_t)frac, ts)) return 2;
        *era = which;
        return 1;
    }
    if (which == ERA_LTTNG_DATE) return 0;
    int negative = n > 0 && *p == '-';
    const char *q = parse_uint(p + negative, e, &whole, &nd);
    if (!q) return 0;
    if (q < e && *q == '.') {
        const char *f = parse_uint(q + 1, e, &frac, &nd);
        if (f != e || nd != 9 || whole > 9000000000ull) return 0;
        int64_t v = (int64_t)whole * 1000000000LL + (int64_t)frac;
        *era = ERA_LTTNG_SECONDS;
        *ts = negative ? -v : v;
        return 1;
    }
    return 0;
}

/* --clock-cycles: exactly 20 digits (zero-padded). Returns 1 (time set), 0 (not this form) or
 * 2 (beyond int64). */
static int lttng_cycles(const char *p, const char *e, int64_t *ts) {
    if (e - p != 20) return 0;
    uint64_t v = 0;
    int big = 0;
    for (const char *q = p; q < e; q++) {
        if (!is_digit(*q)) return 0;
        if (v > (uint64_t)INT64_MAX / 10) big = 1;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (big || v > (uint64_t)INT64_MAX) return 2;
    *ts = (int64_t)v;
    return 1;
}

static int lttng_line(ScannerObject *s, const char *p, const char *end, uint8_t extra_flags) {
    if (end > p && end[-1] == '\r') end--;
    Row r = {KIND_EVENT, ERA_NONE, extra_flags, INT64_MIN, -1, -1, -1, -1};
    if (p >= end || *p != '[') return push_other(s, p, end, extra_flags);
    const char *close = memchr(p, ']', (size_t)(end - p) < 40 ? (size_t)(end - p) : 40);
    if (!close) return push_other(s, p, end, extra_flags);
    int got = lttng_cycles(p + 1, close, &r.ts);
    if (got == 1) {
        r.era = ERA_LTTNG_CYCLES;
    } else if (got == 0) {
        got = lttng_time(p + 1, close, &r.era, &r.ts);
    }
    if (got == 2) return push_other(s, p, end, extra_flags | FLAG_BAD_TIME);
    if (got == 0) return push_other(s, p, end, extra_flags);
    const char *q = close + 1;
    if (q >= end || *q != ' ') return push_other(s, p, end, extra_flags);
    q++;
    if (q < end && *q == '(') {
        const char *c = memchr(q, ')', (size_t)(end - q));
        if (!c || c + 1 >= end || c[1] != ' ') return push_other(s, p, end, extra_flags);
        q = c + 2;
    }
    /* Header fields (hostname, domain, log level...) up to the first word ending in ':'. */
    const char *ev = NULL, *ev_end = NULL;
    for (int k = 0; k < 8 && q < end; k++) {
        const char *w = q;
        while (q < end && *q != ' ') q++;
        if (q - w >= 2 && q[-1] == ':') {
            ev = w;
            ev_end = q - 1;
            break;
        }
        if (q < end) q++;
    }
    if (!ev) return push_other(s, p, end, extra_flags);
    LttngContext ctx = {-1, -1, -1, NULL, 0, 0};
    const char *payload = q, *payload_end = q;
    if (q < end) {
        q++; /* the blank after "EVENT:" */
        for (;;) {
            if (q >= end || *q != '{') return push_other(s, p, end, extra_flags);
            const char *b = block_end(q, end);
            if (!b) return push_other(s, p, end, extra_flags);
            if (b == end) {
                payload = q;
                payload_end = b;
                break;
            }
            if (end - b < 3 || b[0] != ',' || b[1] != ' ' || b[2] != '{')
                return push_other(s, p, end, extra_flags);
            lttng_context(q, b, &ctx);
            q = b + 2;
        }
    }
    r.tid = ctx.tid;
    if (ctx.bad_id) r.flags |= FLAG_BAD_ID;
    if (ctx.procname) {
        r.tname = intern_clean(s, &s->threads, ctx.procname, ctx.procname_len, &r.flags);
        if (r.tname < 0) return -1;
    }
    if (intern_composed(s, ev, (size_t)(ev_end - ev), payload, (size_t)(payload_end - payload), &r))
        return -1;
    return push_ext(s, &r, ctx.pid, ctx.cpu);
}

typedef int (*LineFn)(ScannerObject *, const char *, const char *, uint8_t);

static PyObject *scan_with(ScannerObject *self, PyObject *args, PyObject *kw, LineFn line_fn) {
    static char *kwlist[] = {"data", "final", NULL};
    Py_buffer buf;
    int final = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|p", kwlist, &buf, &final)) return NULL;
    const char *p = buf.buf, *end = p + buf.len;
    size_t before = self->rows;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS;
    while (p < end) {
        if (self->room == 0 && reserve_rows(self, 65536)) {
            failed = 1;
            break;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            if (line_fn(self, p, end, final ? FLAG_NO_NEWLINE : 0)) failed = 1;
            break;
        }
        if (line_fn(self, p, nl, 0)) {
            failed = 1;
            break;
        }
        p = nl + 1;
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&buf);
    if (failed) return PyErr_NoMemory();
    return PyLong_FromSize_t(self->rows - before);
}

static PyObject *Scanner_scan_ftrace(ScannerObject *self, PyObject *args, PyObject *kw) {
    return scan_with(self, args, kw, ftrace_line);
}

static PyObject *Scanner_scan_lttng(ScannerObject *self, PyObject *args, PyObject *kw) {
    self->args_per_body = 1; /* a scanner reads one grammar; LTTng payloads go per event */
    return scan_with(self, args, kw, lttng_line);
}

/* Forgets the bodies (after their rows were settled) and keeps the memory for the next ones. */
static void clear_bodies(ScannerObject *self) {
    interner_clear(&self->bodies);
    self->body_name.len = self->body_nlen.len = self->body_args.len = 0;
}

/*
 * Bodies kept from block to block. A trace whose bodies repeat (mutex traffic) keeps them all
 * and looks each up once; one whose bodies are mostly distinct (RAM page addresses) would
 * otherwise hold every line's text twice, once as a body and once as an argument text.
 */
#ifndef BODIES_KEEP_MAX
#define BODIES_KEEP_MAX 65536
#endif

typedef struct {
    const char *key;
    size_t offset; /* of the Column in ScannerObject */
    Py_ssize_t size;
    const char *fmt;
} RowColumn;

static const RowColumn ROW_COLUMNS[] = {
    {"kind", offsetof(ScannerObject, kind), 1, "B"},   {"era", offsetof(ScannerObject, era), 1, "B"},
    {"flags", offsetof(ScannerObject, flags), 1, "B"}, {"ts", offsetof(ScannerObject, ts), 8, "q"},
    {"tid", offsetof(ScannerObject, tid), 4, "i"},     {"tname", offsetof(ScannerObject, tname), 4, "i"},
    {"name", offsetof(ScannerObject, name), 4, "i"},   {"args", offsetof(ScannerObject, args), 4, "i"},
    {"pid", offsetof(ScannerObject, pid), 4, "i"},     {"cpu", offsetof(ScannerObject, cpu), 4, "i"},
};
#define N_ROW_COLUMNS (sizeof(ROW_COLUMNS) / sizeof(ROW_COLUMNS[0]))

static Column *row_column(ScannerObject *self, size_t i) {
    return (Column *)((char *)self + ROW_COLUMNS[i].offset);
}

static void forget_rows(ScannerObject *self) {
    self->rows = 0;
    self->settled = 0;
    self->room = 0;
}

static PyObject *Scanner_take_rows(ScannerObject *self, PyObject *unused) {
    (void)unused;
    int failed;
    Py_BEGIN_ALLOW_THREADS;
    failed = settle_args(self);
    Py_END_ALLOW_THREADS;
    if (failed) return PyErr_NoMemory();
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (size_t i = 0; i < N_ROW_COLUMNS; i++) {
        PyObject *b = col_export(row_column(self, i), ROW_COLUMNS[i].size, ROW_COLUMNS[i].fmt);
        if (!b || PyDict_SetItemString(d, ROW_COLUMNS[i].key, b)) {
            Py_XDECREF(b);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(b);
    }
    forget_rows(self);
    return d;
}

/*
 * copy_rows(dest, at): copies the rows scanned so far into the writable buffers of dict dest
 * (one per column name it holds), starting at row `at`, and empties the columns while keeping
 * their memory for the next block: a scan then writes into memory that is already mapped and
 * usually still in the CPU caches, and every row is stored once in its final place. Columns
 * dest does not name are emptied too.
 */
static PyObject *Scanner_copy_rows(ScannerObject *self, PyObject *args) {
    PyObject *dest;
    Py_ssize_t at;
    if (!PyArg_ParseTuple(args, "O!n", &PyDict_Type, &dest, &at)) return NULL;
    if (at < 0) {
        PyErr_SetString(PyExc_ValueError, "copy_rows: negative row");
        return NULL;
    }
    int failed;
    Py_BEGIN_ALLOW_THREADS;
    failed = settle_args(self);
    Py_END_ALLOW_THREADS;
    if (failed) return PyErr_NoMemory();
    size_t rows = self->rows;
    Py_buffer views[N_ROW_COLUMNS];
    Column *cols[N_ROW_COLUMNS];
    size_t sizes[N_ROW_COLUMNS];
    size_t nviews = 0;
    PyObject *result = NULL;
    for (size_t i = 0; i < N_ROW_COLUMNS; i++) {
        PyObject *target = PyDict_GetItemString(dest, ROW_COLUMNS[i].key);
        if (!target) continue;
        Column *c = row_column(self, i);
        size_t need = rows * (size_t)ROW_COLUMNS[i].size;
        if (c->len != need) {
            PyErr_Format(PyExc_ValueError, "copy_rows: column %s holds no value per row", ROW_COLUMNS[i].key);
            goto done;
        }
        if (PyObject_GetBuffer(target, &views[nviews], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
        cols[nviews] = c;
        sizes[nviews] = (size_t)ROW_COLUMNS[i].size;
        nviews++;
        if ((size_t)views[nviews - 1].len < (size_t)at * (size_t)ROW_COLUMNS[i].size + need) {
            PyErr_Format(PyExc_ValueError, "copy_rows: no room for %zu rows at row %zd in %s", rows, at,
                         ROW_COLUMNS[i].key);
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS;
    for (size_t v = 0; v < nviews; v++)
        if (rows) memcpy((char *)views[v].buf + (size_t)at * sizes[v], cols[v]->data, cols[v]->len);
    Py_END_ALLOW_THREADS;
    for (size_t i = 0; i < N_ROW_COLUMNS; i++) row_column(self, i)->len = 0;
    forget_rows(self);
    /* Every row copied holds an args id now, so the bodies can go (not an LTTng scan's: its
     * args ids are body ids). */
    if (!self->args_per_body && self->bodies.count > BODIES_KEEP_MAX) clear_bodies(self);
    result = PyLong_FromSize_t(rows);
done:
    for (size_t v = 0; v < nviews; v++) PyBuffer_Release(&views[v]);
    return result;
}

/* Empties the body table and its per-body columns (after the args table was handed over). */
static int reset_bodies(ScannerObject *self) {
    interner_free(&self->bodies);
    Column *cols[] = {&self->body_name, &self->body_nlen, &self->body_args};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        free(cols[i]->data);
        memset(cols[i], 0, sizeof(Column));
    }
    return interner_init(&self->bodies);
}

/*
 * The argument texts of all bodies, in body-id order: each body minus its "name " prefix.
 * Two events with the same argument text keep two entries (ids are (event, args) pairs): the
 * LTTng scan's table.
 */
static PyObject *export_body_args(ScannerObject *self) {
    Interner *b = &self->bodies;
    const int64_t *offs = (const int64_t *)b->offsets.data;
    const uint32_t *nlen = (const uint32_t *)self->body_nlen.data;
    Column data = {0}, offsets = {0};
    size_t n = b->count;
    if (col_reserve(&offsets, (n + 1) * 8) || col_reserve(&data, b->data.len + 1)) {
        free(data.data);
        free(offsets.data);
        return PyErr_NoMemory();
    }
    int64_t pos = 0;
    memcpy(offsets.data, &pos, 8);
    for (size_t i = 0; i < n; i++) {
        int64_t start = offs[i] + nlen[i], stop = offs[i + 1];
        if (start < stop) start++; /* the space after the name */
        memcpy(data.data + pos, b->data.data + start, (size_t)(stop - start));
        pos += stop - start;
        memcpy(offsets.data + 8 * (i + 1), &pos, 8);
    }
    data.len = (size_t)pos;
    offsets.len = (n + 1) * 8;
    if (reset_bodies(self)) {
        free(data.data);
        free(offsets.data);
        return PyErr_NoMemory();
    }
    PyObject *o = col_export(&offsets, 8, "q");
    PyObject *d = col_export(&data, 1, "B");
    PyObject *cnt = PyLong_FromSize_t(n);
    PyObject *r = (o && d && cnt) ? PyTuple_Pack(3, cnt, o, d) : NULL;
    Py_XDECREF(o);
    Py_XDECREF(d);
    Py_XDECREF(cnt);
    return r;
}

static PyObject *Scanner_table(ScannerObject *self, PyObject *which) {
    const char *w = PyUnicode_AsUTF8(which);
    if (!w) return NULL;
    if (!strcmp(w, "names")) return interner_export(&self->names);
    if (!strcmp(w, "args")) {
        if (self->args_per_body) return export_body_args(self);
        if (self->args_owner) {
            PyErr_SetString(PyExc_ValueError, "the args table is shared: ask the scanner that owns it");
            return NULL;
        }
        if (settle_args(self)) return PyErr_NoMemory();
        /* The distinct argument texts: no duplicates, usable as categories as they are. */
        PyObject *r = interner_export(&self->arg_texts);
        if (r && reset_bodies(self)) {
            Py_DECREF(r);
            return PyErr_NoMemory();
        }
        return r;
    }
    if (!strcmp(w, "threads")) return interner_export(&self->threads);
    if (!strcmp(w, "others")) return interner_export(&self->others);
    PyErr_Format(PyExc_ValueError, "unknown table %s", w);
    return NULL;
}

/*
 * Interns another scanner's exported table into this one's and returns, as an int32 buffer,
 * the id here of each of its strings: how the tables of parallel scanners become one.
 */
static PyObject *Scanner_absorb(ScannerObject *self, PyObject *args) {
    const char *which;
    Py_ssize_t count;
    Py_buffer offs, data;
    if (!PyArg_ParseTuple(args, "sny*y*", &which, &count, &offs, &data)) return NULL;
    Interner *t = NULL;
    if (!strcmp(which, "names")) t = &self->names;
    else if (!strcmp(which, "threads")) t = &self->threads;
    else if (!strcmp(which, "others")) t = &self->others;
    else if (!strcmp(which, "args") && !self->args_per_body && !settle_args(self)) t = self->args_tab;
    const int64_t *o = offs.buf;
    int ok = t && count >= 0 && offs.len >= (Py_ssize_t)((count + 1) * 8);
    for (Py_ssize_t i = 0; ok && i < count; i++)
        ok = o[i] >= 0 && o[i] <= o[i + 1] && o[i + 1] <= data.len;
    if (!ok) {
        PyBuffer_Release(&offs);
        PyBuffer_Release(&data);
        PyErr_Format(PyExc_ValueError, "cannot absorb table %s (unknown, or malformed offsets)",
                     which);
        return NULL;
    }
    Column out = {0};
    int failed = col_reserve(&out, (size_t)count * 4 + 4) != 0;
    Py_BEGIN_ALLOW_THREADS;
    /* Room for every string at once (no regrowth midway), then hash a few strings ahead and
     * prefetch their slots, as settle_args does: the other lane's table is mostly new texts. */
    while (!failed && (t->count + (size_t)count) * 10 >= t->nslots * 7) failed = interner_grow(t) != 0;
    failed = failed || col_reserve(&t->data, (size_t)(count ? o[count] - o[0] : 0)) ||
             col_reserve(&t->offsets, (size_t)count * 8);
    if (!failed && t->count + (size_t)count > t->hashes_cap) {
        uint64_t *nh = realloc(t->hashes, (t->count + (size_t)count) * sizeof(uint64_t));
        if (nh) {
            t->hashes = nh;
            t->hashes_cap = t->count + (size_t)count;
        } else {
            failed = 1;
        }
    }
    uint64_t hs[HASH_RING];
    const char *base = (const char *)data.buf;
    for (Py_ssize_t i = 0; !failed && i < count + SETTLE_AHEAD; i++) {
        if (i < count) {
            int odd;
            uint64_t h = hash_bytes(base + o[i], (size_t)(o[i + 1] - o[i]), &odd);
            hs[i % HASH_RING] = h;
            __builtin_prefetch(&t->slots[(size_t)h & (t->nslots - 1)]);
        }
        if (i >= SETTLE_AHEAD) {
            Py_ssize_t j = i - SETTLE_AHEAD;
            int32_t id = intern_hashed(t, base + o[j], (size_t)(o[j + 1] - o[j]), hs[j % HASH_RING]);
            if (id < 0) failed = 1;
            else col_push(&out, &id, 4);
        }
    }
    Py_END_ALLOW_THREADS;
    PyBuffer_Release(&offs);
    PyBuffer_Release(&data);
    if (failed) {
        free(out.data);
        return PyErr_NoMemory();
    }
    return col_export(&out, 4, "i");
}

static int Scanner_init(ScannerObject *self, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    if (interner_init(&self->names) || interner_init(&self->bodies) ||
        interner_init(&self->arg_texts) || interner_init(&self->threads) ||
        interner_init(&self->others)) {
        PyErr_NoMemory();
        return -1;
    }
    self->args_tab = &self->arg_texts;
    return 0;
}

/*
 * share_args(owner): intern argument texts into owner's table from now on, so that several
 * scanners of one input give args ids of one table and nothing is merged afterwards. The
 * caller guarantees that no two of them settle at the same time (scanpool copies the rows of
 * the blocks one after the other, and settling happens then).
 */
static PyObject *Scanner_share_args(ScannerObject *self, PyObject *owner) {
    if (!PyObject_TypeCheck(owner, Py_TYPE(self)) || owner == (PyObject *)self) {
        PyErr_SetString(PyExc_TypeError, "share_args: another Scanner is needed");
        return NULL;
    }
    ScannerObject *o = (ScannerObject *)owner;
    if (self->rows || self->bodies.count || self->arg_texts.count || o->args_owner) {
        PyErr_SetString(PyExc_ValueError, "share_args: only before the first scan, with an owner");
        return NULL;
    }
    Py_INCREF(owner);
    Py_XSETREF(self->args_owner, owner);
    self->args_tab = &o->arg_texts;
    Py_RETURN_NONE;
}

static void Scanner_dealloc(ScannerObject *self) {
    Column *cols[] = {&self->kind,  &self->era,  &self->flags,   &self->ts,
                      &self->tid,   &self->tname, &self->name,   &self->args,
                      &self->scratch, &self->body_name, &self->body_nlen,
                      &self->body_args, &self->pid, &self->cpu, &self->compose};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) free(cols[i]->data);
    interner_free(&self->names);
    interner_free(&self->bodies);
    interner_free(&self->arg_texts);
    interner_free(&self->threads);
    interner_free(&self->others);
    Py_CLEAR(self->args_owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Scanner_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(data, default_tid=-1, final=False) -> rows added. data holds complete lines."},
    {"scan_ftrace", (PyCFunction)(void (*)(void))Scanner_scan_ftrace, METH_VARARGS | METH_KEYWORDS,
     "scan_ftrace(data, final=False) -> rows added: ftrace / trace-cmd report text lines."},
    {"scan_lttng", (PyCFunction)(void (*)(void))Scanner_scan_lttng, METH_VARARGS | METH_KEYWORDS,
     "scan_lttng(data, final=False) -> rows added: babeltrace text lines of LTTng events."},
    {"absorb", (PyCFunction)Scanner_absorb, METH_VARARGS,
     "absorb(which, count, offsets, data) -> int32 ids here of another scanner's exported "
     "table 'names'|'args'|'threads'|'others' (not 'args' of an LTTng scan)."},
    {"take_rows", (PyCFunction)Scanner_take_rows, METH_NOARGS,
     "Hands over the row columns scanned so far as read-only buffers and starts new ones."},
    {"copy_rows", (PyCFunction)Scanner_copy_rows, METH_VARARGS,
     "copy_rows(dest, at) -> rows copied: the rows scanned so far into dest[column] (writable "
     "buffers) from row at; the columns are emptied and keep their memory."},
    {"share_args", (PyCFunction)Scanner_share_args, METH_O,
     "share_args(owner): intern argument texts into owner's table (rows settled one block at "
     "a time by the caller); table('args') is then asked of the owner."},
    {"table", (PyCFunction)Scanner_table, METH_O,
     "table('names'|'args'|'threads'|'others') -> (count, int64 offsets, utf-8 data); "
     "hands the table over and empties it, so call it after the last scan."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "parsers._scan.Scanner",
    .tp_basicsize = sizeof(ScannerObject),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Splits QEMU text trace lines into interned columns.",
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef scanmodule = {
    PyModuleDef_HEAD_INIT, "_scan", "Compiled line scanner for migtrace's text readers.", -1, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    if (buffer_type_ready() < 0 || PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&scanmodule);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&BufferType);
    PyModule_AddObject(m, "Buffer", (PyObject *)&BufferType);
    PyModule_AddIntConstant(m, "KIND_EVENT", KIND_EVENT);
    PyModule_AddIntConstant(m, "KIND_OTHER", KIND_OTHER);
    PyModule_AddIntConstant(m, "KIND_BARE", KIND_BARE);
    PyModule_AddIntConstant(m, "FLAG_BAD_UTF8", FLAG_BAD_UTF8);
    PyModule_AddIntConstant(m, "FLAG_TEXT_CUT", FLAG_TEXT_CUT);
    PyModule_AddIntConstant(m, "FLAG_NO_NEWLINE", FLAG_NO_NEWLINE);
    PyModule_AddIntConstant(m, "FLAG_BAD_TIME", FLAG_BAD_TIME);
    PyModule_AddIntConstant(m, "FLAG_BAD_ID", FLAG_BAD_ID);
    PyModule_AddIntConstant(m, "KIND_KERNEL", KIND_KERNEL);
    PyModule_AddIntConstant(m, "KIND_HEADER", KIND_HEADER);
    return m;
}
