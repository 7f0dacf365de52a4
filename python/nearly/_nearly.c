/*
 * _nearly.c -- the CPython binding of libnearly (module nearly._nearly).
 *
 * Written against the public header include/nearly.h only.  It needs no
 * numpy to build: vectors come in through the buffer protocol (a C-contiguous
 * float32 buffer is used in place, without a copy) and results go out as
 * numpy arrays created through numpy's Python-level API (numpy.empty, cached
 * at first use) and filled through the buffer protocol.
 *
 * Threading model.  Every call that runs engine code on more than a trivial
 * amount of data releases the GIL.  An object that is closed (close(),
 * __exit__, Database.close) while another thread is inside one of its
 * GIL-free sections would free memory under that thread's feet, so every
 * object counts the calls in flight (`busy`, touched only with the GIL held)
 * and close() refuses with RuntimeError while it is non-zero.  Arbitrary
 * Python code can run while arguments are converted (__index__, __float__,
 * json.dumps of a user's dict, numpy allocations that trigger the garbage
 * collector), so the engine handle is read -- and the closed state checked --
 * only after every conversion, immediately before the GIL is released.
 *
 * Errors: every engine failure becomes an exception of the class mapped from
 * its NY_E* code (see exc_for), carrying ny_errmsg(), which is per OS thread
 * and therefore still valid after the GIL is re-acquired.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nearly.h"

/* Largest vector id accepted from Python: UINT32_MAX marks "no result". */
#define NY_PY_MAX_ID 0xFFFFFFFEu

/* ===== Module state ===================================================== */

static PyObject *Error, *InvalidArgumentError, *DimensionError, *NotFoundError,
    *AlreadyExistsError, *StorageError, *CorruptError, *FullError, *BusyError,
    *ClosedError, *ReadOnlyError, *InternalError, *OutOfMemoryError;

/* Lazily imported helpers (numpy, json, uuid). */
static PyObject *np_empty, *np_int64, *np_float32;
static PyObject *json_dumps, *json_loads, *uuid_class;
static PyObject *str_ensure_ascii, *str_allow_nan; /* kwnames for json.dumps */

static PyTypeObject RecordType;

static PyObject *exc_for(int rc)
{
    switch (rc) {
    case NY_EINVAL: return InvalidArgumentError;
    case NY_ENOMEM: return OutOfMemoryError;
    case NY_EIO: return StorageError;
    case NY_ECORRUPT: return CorruptError;
    case NY_ENOTFOUND: return NotFoundError;
    case NY_EEXIST: return AlreadyExistsError;
    case NY_EFULL: return FullError;
    case NY_EDIM: return DimensionError;
    case NY_ECLOSED: return ClosedError;
    case NY_EBUSY: return BusyError;
    case NY_EREADONLY: return ReadOnlyError;
    case NY_EINTERNAL: return InternalError;
    default: return Error;
    }
}

/* Raises the exception for an engine failure rc, with the engine's message.
 * Must be called in the OS thread that made the failing call, before any
 * other engine call. */
static PyObject *raise_rc(int rc)
{
    const char *m = ny_errmsg();
    if (!m || !*m) m = ny_strerror(rc);
    PyErr_SetString(exc_for(rc), m);
    return NULL;
}

static PyObject *raise_closed(const char *what)
{
    PyErr_Format(ClosedError, "%s is closed", what);
    return NULL;
}

static int ensure_numpy(void)
{
    if (np_empty) return 0;
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) return -1;
    PyObject *e = PyObject_GetAttrString(np, "empty");
    PyObject *i64 = PyObject_GetAttrString(np, "int64");
    PyObject *f32 = PyObject_GetAttrString(np, "float32");
    Py_DECREF(np);
    if (!e || !i64 || !f32) {
        Py_XDECREF(e); Py_XDECREF(i64); Py_XDECREF(f32);
        return -1;
    }
    np_int64 = i64;
    np_float32 = f32;
    np_empty = e; /* last: it is the "initialised" flag */
    return 0;
}

static int ensure_json(void)
{
    if (json_loads) return 0;
    PyObject *js = PyImport_ImportModule("json");
    if (!js) return -1;
    PyObject *d = PyObject_GetAttrString(js, "dumps");
    PyObject *l = PyObject_GetAttrString(js, "loads");
    Py_DECREF(js);
    if (!d || !l) { Py_XDECREF(d); Py_XDECREF(l); return -1; }
    json_dumps = d;
    json_loads = l;
    return 0;
}

static int ensure_uuid(void)
{
    if (uuid_class) return 0;
    PyObject *m = PyImport_ImportModule("uuid");
    if (!m) return -1;
    uuid_class = PyObject_GetAttrString(m, "UUID");
    Py_DECREF(m);
    return uuid_class ? 0 : -1;
}

/* numpy.empty(shape, dtype); shape is (d0,) when ndim == 1. */
enum { DT_INT64, DT_FLOAT32 };

static PyObject *np_new(int ndim, Py_ssize_t d0, Py_ssize_t d1, int dt)
{
    if (ensure_numpy() < 0) return NULL;
    PyObject *dtype = dt == DT_INT64 ? np_int64 : np_float32;
    PyObject *shape = ndim == 1 ? Py_BuildValue("(n)", d0) : Py_BuildValue("(nn)", d0, d1);
    if (!shape) return NULL;
    PyObject *args[2] = {shape, dtype};
    PyObject *arr = PyObject_Vectorcall(np_empty, args, 2, NULL);
    Py_DECREF(shape);
    return arr;
}

/* Writable C-contiguous pointer into a numpy array made by np_new.  numpy
 * keeps the pointer valid for the array's lifetime, so the view is released
 * at once. */
static void *np_data(PyObject *arr)
{
    Py_buffer v;
    if (PyObject_GetBuffer(arr, &v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return NULL;
    void *p = v.buf;
    PyBuffer_Release(&v);
    return p;
}

/* json.dumps(obj, ensure_ascii=False, allow_nan=False) as a new str. */
static PyObject *to_json(PyObject *obj)
{
    if (ensure_json() < 0) return NULL;
    PyObject *args[3] = {obj, Py_False, Py_False};
    PyObject *kwn = PyTuple_Pack(2, str_ensure_ascii, str_allow_nan);
    if (!kwn) return NULL;
    PyObject *s = PyObject_Vectorcall(json_dumps, args, 1, kwn);
    Py_DECREF(kwn);
    return s;
}

static PyObject *from_json(const char *s)
{
    if (ensure_json() < 0) return NULL;
    PyObject *str = PyUnicode_FromString(s);
    if (!str) return NULL;
    PyObject *r = PyObject_CallOneArg(json_loads, str);
    Py_DECREF(str);
    return r;
}

/* ===== Fast argument parsing ============================================ */

/* Fills vals[0..nnames) from a vectorcall (args, nargs, kwnames); missing
 * arguments stay as the caller initialised them (NULL or a default).  The
 * first npos names may be given positionally. */
static int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      const char *const *names, int nnames, int npos, int nrequired, PyObject **vals)
{
    if (nargs > npos) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional arguments (%zd given)", fname,
                     npos, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) vals[i] = args[i];
    if (kwnames) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t j = 0; j < nk; j++) {
            PyObject *kn = PyTuple_GET_ITEM(kwnames, j);
            int found = -1;
            for (int i = 0; i < nnames; i++)
                if (PyUnicode_CompareWithASCIIString(kn, names[i]) == 0) { found = i; break; }
            if (found < 0) {
                PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, kn);
                return -1;
            }
            if (found < nargs) {
                PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                             names[found]);
                return -1;
            }
            vals[found] = args[nargs + j];
        }
    }
    for (int i = 0; i < nrequired; i++)
        if (!vals[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
            return -1;
        }
    return 0;
}

/* Optional non-negative integer argument: None (or absent) gives dflt. */
static int arg_size(PyObject *o, const char *name, size_t dflt, size_t minv, size_t *out)
{
    if (!o || o == Py_None) { *out = dflt; return 0; }
    if (PyBool_Check(o) || !PyIndex_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.100s", name, Py_TYPE(o)->tp_name);
        return -1;
    }
    PyObject *i = PyNumber_Index(o);
    if (!i) return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow > 0 || (v > 0 && (unsigned long long)v > (unsigned long long)SIZE_MAX / 2)) {
        /* Absurdly large: callers cap it; keep it representable. */
        *out = SIZE_MAX / 2;
        return 0;
    }
    if (overflow < 0 || v < (long long)minv) {
        PyErr_Format(InvalidArgumentError, "%s must be >= %zu", name, minv);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int arg_threads(PyObject *o, int dflt, int *out)
{
    size_t v;
    if (arg_size(o, "num_threads", (size_t)dflt, 0, &v) < 0) return -1;
    *out = v > 4096 ? 4096 : (int)v;
    return 0;
}

static int arg_bool(PyObject *o, int dflt)
{
    if (!o) return dflt;
    return PyObject_IsTrue(o);
}

/* ===== Vectors in: buffer protocol, conversion rule ==================== */

/*
 * The conversion rule, applied identically everywhere vectors are accepted:
 *   - An object with the buffer protocol (numpy array, array.array,
 *     memoryview, bytes, ...) is read through it.  float32 ('f'), native
 *     byte order, C-contiguous and 4-byte aligned: used in place, no copy.
 *     Any other real number format (float64, float16, signed/unsigned
 *     integers of any size), strided layout or misalignment: converted once
 *     to a temporary float32 array.  bool, complex, structured or
 *     non-native-byte-order formats: TypeError.
 *   - Shape: 2-D (n, dim), or 1-D of length dim (one vector), or 1-D of
 *     length n*dim (n vectors, row-major, e.g. an array.array).  Anything
 *     else: DimensionError (a ValueError) naming the shape.
 *   - Otherwise a sequence of numbers (one vector) or a sequence of
 *     sequences of numbers (rows), converted once.
 */
typedef struct fmat {
    Py_buffer view;
    int has_view;
    const float *data;
    float *owned;
    size_t n;    /* rows */
    int single;  /* the input was one vector (1-D of length dim) */
} fmat;

static void fmat_release(fmat *m)
{
    if (m->has_view) PyBuffer_Release(&m->view);
    m->has_view = 0;
    free(m->owned);
    m->owned = NULL;
    m->data = NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Element kinds after format parsing: 'f' float (size 2, 4, 8), 'i'
 * signed integer, 'u' unsigned integer (size 1, 2, 4, 8). */
static int parse_format(const char *fmt, Py_ssize_t itemsize, char *kind, const char *what)
{
    const char *s = fmt ? fmt : "B";
    int native = 1;
    if (*s == '@' || *s == '=') s++;
    else if (*s == '<') {
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
        native = 0;
#endif
        s++;
    } else if (*s == '>' || *s == '!') {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        native = 0;
#endif
        s++;
    }
    char k = 0;
    if (s[0] && !s[1]) {
        switch (s[0]) {
        case 'e': case 'f': case 'd': k = 'f'; break;
        case 'b': case 'h': case 'i': case 'l': case 'q': case 'n': k = 'i'; break;
        case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N': k = 'u'; break;
        default: break;
        }
    }
    int size_ok = k == 'f' ? (itemsize == 2 || itemsize == 4 || itemsize == 8)
                           : (itemsize == 1 || itemsize == 2 || itemsize == 4 || itemsize == 8);
    if (!k || !size_ok) {
        PyErr_Format(PyExc_TypeError,
                     "%s: unsupported buffer format '%s' (expected real numbers: float32, which is used "
                     "without copying, or another float or integer type, converted once)",
                     what, fmt ? fmt : "B");
        return -1;
    }
    if (!native && itemsize > 1) {
        PyErr_Format(PyExc_TypeError,
                     "%s: buffer format '%s' is not in native byte order; convert it first, e.g. "
                     "a.astype('=f4')", what, fmt);
        return -1;
    }
    *kind = k;
    return 0;
}

static inline double load_elem(const char *p, char kind, Py_ssize_t size)
{
    switch (kind) {
    case 'f':
        if (size == 4) { float v; memcpy(&v, p, 4); return v; }
        if (size == 8) { double v; memcpy(&v, p, 8); return v; }
        { uint16_t h; memcpy(&h, p, 2); return half_to_float(h); }
    case 'i':
        switch (size) {
        case 1: return (double)*(const int8_t *)p;
        case 2: { int16_t v; memcpy(&v, p, 2); return v; }
        case 4: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    default:
        switch (size) {
        case 1: return (double)*(const uint8_t *)p;
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    }
}

static int fmat_rows_from_len(size_t len, size_t dim, fmat *m, const char *what, PyObject *shape_desc)
{
    if (len == dim) { m->n = 1; m->single = 1; return 0; }
    if (dim && len % dim == 0) { m->n = len / dim; m->single = 0; return 0; }
    PyErr_Format(DimensionError, "%s: expected vectors of dimension %zu, got %S", what, dim, shape_desc);
    return -1;
}

static int fmat_from_buffer(PyObject *obj, size_t dim, const char *what, fmat *m)
{
    if (PyObject_GetBuffer(obj, &m->view, PyBUF_RECORDS_RO) < 0) return -1;
    m->has_view = 1;
    Py_buffer *v = &m->view;
    char kind;
    if (parse_format(v->format, v->itemsize, &kind, what) < 0) return -1;
    size_t rows, cols;
    if (v->ndim == 1 || v->ndim == 2) {
        if (v->ndim == 1) {
            PyObject *desc = PyUnicode_FromFormat("a 1-D buffer of length %zd", v->shape[0]);
            if (!desc) return -1;
            int r = fmat_rows_from_len((size_t)v->shape[0], dim, m, what, desc);
            Py_DECREF(desc);
            if (r < 0) return -1;
            rows = m->n;
            cols = dim;
        } else {
            rows = (size_t)v->shape[0];
            cols = (size_t)v->shape[1];
            if (cols != dim) {
                PyErr_Format(DimensionError, "%s: expected vectors of dimension %zu, got shape (%zd, %zd)",
                             what, dim, v->shape[0], v->shape[1]);
                return -1;
            }
            m->n = rows;
            m->single = 0;
        }
    } else {
        PyErr_Format(DimensionError, "%s: expected a 1-D or 2-D array of vectors of dimension %zu, got a "
                     "%d-D buffer", what, dim, v->ndim);
        return -1;
    }
    if (kind == 'f' && v->itemsize == 4 && PyBuffer_IsContiguous(v, 'C') && ((uintptr_t)v->buf & 3) == 0) {
        m->data = (const float *)v->buf; /* zero copy */
        return 0;
    }
    if (rows && cols > SIZE_MAX / sizeof(float) / rows) { PyErr_NoMemory(); return -1; }
    m->owned = malloc(rows * cols * sizeof(float) + 1);
    if (!m->owned) { PyErr_NoMemory(); return -1; }
    const char *base = v->buf;
    if (v->ndim == 2) {
        Py_ssize_t s0 = v->strides ? v->strides[0] : (Py_ssize_t)cols * v->itemsize;
        Py_ssize_t s1 = v->strides ? v->strides[1] : v->itemsize;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                m->owned[i * cols + j] = (float)load_elem(base + (Py_ssize_t)i * s0 + (Py_ssize_t)j * s1, kind, v->itemsize);
    } else {
        Py_ssize_t s0 = v->strides ? v->strides[0] : v->itemsize;
        size_t tot = rows * cols;
        for (size_t t = 0; t < tot; t++) m->owned[t] = (float)load_elem(base + (Py_ssize_t)t * s0, kind, v->itemsize);
    }
    m->data = m->owned;
    return 0;
}

/* Converts one sequence of numbers into dst[0..dim). */
static int fill_row(PyObject *row, float *dst, size_t dim, const char *what, size_t rowi)
{
    if (PyUnicode_Check(row) || PyBytes_Check(row)) {
        PyErr_Format(PyExc_TypeError, "%s: row %zu is a string, expected numbers", what, rowi);
        return -1;
    }
    PyObject *seq = PySequence_Fast(row, "vectors must be sequences of numbers");
    if (!seq) return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    if ((size_t)len != dim) {
        PyErr_Format(DimensionError, "%s: expected vectors of dimension %zu, row %zu has %zd values", what,
                     dim, rowi, len);
        Py_DECREF(seq);
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t j = 0; j < len; j++) {
        double d = PyFloat_AsDouble(items[j]);
        if (d == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: row %zu, element %zd is not a real number (%.100s)", what,
                         rowi, j, Py_TYPE(items[j])->tp_name);
            Py_DECREF(seq);
            return -1;
        }
        dst[j] = (float)d;
    }
    Py_DECREF(seq);
    return 0;
}

static int fmat_from_sequence(PyObject *obj, size_t dim, const char *what, fmat *m)
{
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected vectors, got str", what);
        return -1;
    }
    PyObject *seq = PySequence_Fast(obj, "");
    if (!seq) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a float32 buffer (numpy array, array.array, memoryview) or a sequence "
                     "of numbers, got %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int nested = 0;
    if (len > 0) {
        Py_ssize_t l0 = PyObject_Length(items[0]);
        if (l0 < 0) PyErr_Clear();
        else nested = !PyUnicode_Check(items[0]);
    }
    int rc = -1;
    if (!nested) {
        if (len == 0) { m->n = 0; m->single = 0; m->owned = malloc(1); }
        else if ((size_t)len != dim) {
            PyErr_Format(DimensionError, "%s: expected a vector of dimension %zu, got %zd values", what, dim, len);
            goto out;
        } else {
            m->n = 1;
            m->single = 1;
            m->owned = malloc(dim * sizeof(float));
        }
        if (!m->owned) { PyErr_NoMemory(); goto out; }
        if (len && fill_row(seq, m->owned, dim, what, 0) < 0) goto out;
    } else {
        m->n = (size_t)len;
        m->single = 0;
        if (dim > SIZE_MAX / sizeof(float) / (size_t)len) { PyErr_NoMemory(); goto out; }
        m->owned = malloc((size_t)len * dim * sizeof(float));
        if (!m->owned) { PyErr_NoMemory(); goto out; }
        for (Py_ssize_t i = 0; i < len; i++)
            if (fill_row(items[i], m->owned + (size_t)i * dim, dim, what, (size_t)i) < 0) goto out;
    }
    m->data = m->owned;
    rc = 0;
out:
    Py_DECREF(seq);
    return rc;
}

static int fmat_get(PyObject *obj, size_t dim, const char *what, fmat *m)
{
    memset(m, 0, sizeof *m);
    int rc = PyObject_CheckBuffer(obj) ? fmat_from_buffer(obj, dim, what, m)
                                       : fmat_from_sequence(obj, dim, what, m);
    if (rc < 0) fmat_release(m);
    return rc;
}

/* Index of the first row holding NaN or infinity, or -1. */
static Py_ssize_t first_nonfinite(const float *v, size_t n, size_t dim)
{
    for (size_t i = 0; i < n; i++) {
        const float *r = v + i * dim;
        float acc = 0;
        for (size_t j = 0; j < dim; j++) acc += r[j] * 0.0f; /* NaN iff some r[j] is NaN/inf */
        if (acc != acc) return (Py_ssize_t)i;
    }
    return -1;
}

/* ===== Vector ids in ====================================================== */

/* Reads vector ids from an int, a buffer of integers or a sequence of
 * integers into a malloc'd array.  *single is set when obj was one int. */
static int ids_get(PyObject *obj, const char *what, uint32_t **out, size_t *n, int *single)
{
    *out = NULL;
    *n = 0;
    if (single) *single = 0;
    if (PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: ids must be integers, not bool", what);
        return -1;
    }
    if (PyLong_Check(obj) || (PyIndex_Check(obj) && !PyObject_CheckBuffer(obj))) {
        PyObject *i = PyNumber_Index(obj);
        if (!i) return -1;
        int of = 0;
        long long v = PyLong_AsLongLongAndOverflow(i, &of);
        Py_DECREF(i);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (of || v < 0 || v > (long long)NY_PY_MAX_ID) {
            PyErr_Format(InvalidArgumentError, "%s: id out of range: vector ids must be integers in [0, %u]",
                         what, NY_PY_MAX_ID);
            return -1;
        }
        *out = malloc(sizeof(uint32_t));
        if (!*out) { PyErr_NoMemory(); return -1; }
        (*out)[0] = (uint32_t)v;
        *n = 1;
        if (single) *single = 1;
        return 0;
    }
    if (PyObject_CheckBuffer(obj)) {
        Py_buffer v;
        if (PyObject_GetBuffer(obj, &v, PyBUF_RECORDS_RO) < 0) return -1;
        char kind = 0;
        int rc = -1;
        if (parse_format(v.format, v.itemsize, &kind, what) < 0) goto bout;
        if (kind == 'f') {
            PyErr_Format(PyExc_TypeError, "%s: ids must be integers, got a buffer of floats ('%s')", what,
                         v.format);
            goto bout;
        }
        if (v.ndim > 1) {
            PyErr_Format(InvalidArgumentError, "%s: ids must be a 1-D array, got %d-D", what, v.ndim);
            goto bout;
        }
        size_t cnt = v.ndim == 0 ? 1 : (size_t)v.shape[0];
        Py_ssize_t stride = v.ndim == 0 ? 0 : (v.strides ? v.strides[0] : v.itemsize);
        *out = malloc(cnt * sizeof(uint32_t) + 1);
        if (!*out) { PyErr_NoMemory(); goto bout; }
        for (size_t t = 0; t < cnt; t++) {
            const char *p = (const char *)v.buf + (Py_ssize_t)t * stride;
            int bad = 0;
            uint64_t x = 0;
            if (kind == 'u') {
                switch (v.itemsize) {
                case 1: x = *(const uint8_t *)p; break;
                case 2: { uint16_t y; memcpy(&y, p, 2); x = y; break; }
                case 4: { uint32_t y; memcpy(&y, p, 4); x = y; break; }
                default: memcpy(&x, p, 8); break;
                }
            } else {
                int64_t s;
                switch (v.itemsize) {
                case 1: s = *(const int8_t *)p; break;
                case 2: { int16_t y; memcpy(&y, p, 2); s = y; break; }
                case 4: { int32_t y; memcpy(&y, p, 4); s = y; break; }
                default: memcpy(&s, p, 8); break;
                }
                if (s < 0) bad = 1;
                x = (uint64_t)s;
            }
            if (bad || x > NY_PY_MAX_ID) {
                PyErr_Format(InvalidArgumentError, "%s: id at position %zu out of range: vector ids must be "
                             "integers in [0, %u]", what, t, NY_PY_MAX_ID);
                free(*out);
                *out = NULL;
                goto bout;
            }
            (*out)[t] = (uint32_t)x;
        }
        *n = cnt;
        if (single && v.ndim == 0) *single = 1;
        rc = 0;
    bout:
        PyBuffer_Release(&v);
        return rc;
    }
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: ids must be integers, not str", what);
        return -1;
    }
    PyObject *seq = PySequence_Fast(obj, "");
    if (!seq) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s: ids must be an int, an integer array or a sequence of ints, not "
                     "%.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    *out = malloc((size_t)len * sizeof(uint32_t) + 1);
    if (!*out) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t t = 0; t < len; t++) {
        PyObject *it = PySequence_Fast_GET_ITEM(seq, t);
        if (PyBool_Check(it) || !PyIndex_Check(it)) {
            PyErr_Format(PyExc_TypeError, "%s: ids must be integers, got %.100s at position %zd", what,
                         Py_TYPE(it)->tp_name, t);
            goto sfail;
        }
        PyObject *i = PyNumber_Index(it);
        if (!i) goto sfail;
        int of = 0;
        long long x = PyLong_AsLongLongAndOverflow(i, &of);
        Py_DECREF(i);
        if (x == -1 && PyErr_Occurred()) goto sfail;
        if (of || x < 0 || x > (long long)NY_PY_MAX_ID) {
            PyErr_Format(InvalidArgumentError, "%s: id at position %zd out of range: vector ids must be "
                         "integers in [0, %u]", what, t, NY_PY_MAX_ID);
            goto sfail;
        }
        (*out)[t] = (uint32_t)x;
    }
    Py_DECREF(seq);
    *n = (size_t)len;
    return 0;
sfail:
    Py_DECREF(seq);
    free(*out);
    *out = NULL;
    return -1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* -1 (with ValueError) if ids has a repeated value. */
static int check_unique(const uint32_t *ids, size_t n, const char *what)
{
    if (n < 2) return 0;
    uint32_t *c = malloc(n * sizeof *c);
    if (!c) { PyErr_NoMemory(); return -1; }
    memcpy(c, ids, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_u32);
    for (size_t i = 1; i < n; i++)
        if (c[i] == c[i - 1]) {
            PyErr_Format(InvalidArgumentError, "%s: id %u appears more than once", what, c[i]);
            free(c);
            return -1;
        }
    free(c);
    return 0;
}

/* Qdrant's params.quantization as a dict {"ignore": bool, "rescore": bool,
 * "oversampling": float in 1..1000} (None: defaults).  *rescore stays -1
 * (default) unless given. */
static int quant_params(PyObject *o, int *ignore, int *rescore, float *oversampling)
{
    if (!o || o == Py_None) return 0;
    if (!PyDict_Check(o)) {
        PyErr_SetString(InvalidArgumentError, "search: quantization must be a dict {ignore, rescore, oversampling}");
        return -1;
    }
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (PyDict_Next(o, &pos, &key, &val)) {
        const char *kn = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!kn) {
            PyErr_SetString(InvalidArgumentError, "search: quantization keys must be strings");
            return -1;
        }
        if (!strcmp(kn, "ignore") || !strcmp(kn, "rescore")) {
            int b = val == Py_None ? -1 : PyObject_IsTrue(val);
            if (val != Py_None && b < 0) return -1;
            if (kn[0] == 'i') *ignore = b > 0;
            else *rescore = b;
        } else if (!strcmp(kn, "oversampling")) {
            if (val == Py_None) continue;
            double os = PyFloat_AsDouble(val);
            if (os == -1.0 && PyErr_Occurred()) return -1;
            if (!(os >= 1 && os <= 1000)) {
                PyErr_Format(InvalidArgumentError, "search: quantization.oversampling must be in 1..1000, got %g", os);
                return -1;
            }
            *oversampling = (float)os;
        } else {
            PyErr_Format(InvalidArgumentError,
                         "search: unknown quantization parameter '%.60s' (expected ignore, rescore, oversampling)", kn);
            return -1;
        }
    }
    return 0;
}

/* ===== Index ============================================================== */

typedef struct {
    PyObject_HEAD
    ny_hnsw *h;
    size_t dim;
    ny_metric metric;
    size_t m, efc;
    size_t ef;        /* default search beam; 0: engine default */
    int num_threads;  /* default threads for batches; 0: all CPUs */
    uint64_t next_id; /* next id handed out by add(ids=None) */
    uint64_t added;   /* vectors ever added (bounds the result width) */
    Py_ssize_t busy;  /* calls in flight without the GIL */
    PyObject *weakreflist;
} IndexObject;

static PyTypeObject IndexType;

/* Takes the engine handle for a GIL-free section, or raises ClosedError. */
static ny_hnsw *idx_enter(IndexObject *self)
{
    if (!self->h) { raise_closed("Index"); return NULL; }
    self->busy++;
    return self->h;
}

static void idx_leave(IndexObject *self) { self->busy--; }

static void idx_sync_params(IndexObject *self)
{
    ny_hnsw_stats st;
    ny_hnsw_get_stats(self->h, &st);
    self->dim = st.dim;
    self->metric = st.metric;
    self->m = st.m;
    self->efc = st.ef_construction;
    if (self->next_id < st.max_id) self->next_id = st.max_id;
    if (self->added < st.count + st.deleted) self->added = st.count + st.deleted;
}

static int Index_init(IndexObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"dim", "metric", "m", "ef_construction", "capacity", "seed", "ef",
                             "num_threads", NULL};
    Py_ssize_t dim;
    const char *metric = "cosine";
    Py_ssize_t m = 16, efc = 200, cap = 0;
    unsigned long long seed = 42;
    PyObject *efo = Py_None, *nto = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|snn$nKOO:Index", kwlist, &dim, &metric, &m, &efc, &cap,
                                     &seed, &efo, &nto))
        return -1;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Index.__init__: the index is in use by another thread");
        return -1;
    }
    if (dim < 1) { PyErr_Format(InvalidArgumentError, "dim must be >= 1, got %zd", dim); return -1; }
    if (m < 2) { PyErr_Format(InvalidArgumentError, "m must be >= 2, got %zd", m); return -1; }
    if (efc < 1) { PyErr_Format(InvalidArgumentError, "ef_construction must be >= 1, got %zd", efc); return -1; }
    if (cap < 0) { PyErr_Format(InvalidArgumentError, "capacity must be >= 0, got %zd", cap); return -1; }
    size_t ef;
    int nt;
    if (arg_size(efo, "ef", 0, 1, &ef) < 0 || arg_threads(nto, 0, &nt) < 0) return -1;
    ny_metric mt;
    if (ny_metric_parse(metric, &mt) != NY_OK) {
        PyErr_Format(InvalidArgumentError, "unknown metric '%s' (expected 'cosine', 'l2' or 'dot')", metric);
        return -1;
    }
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, (size_t)dim, mt);
    p.m = (size_t)m;
    p.ef_construction = (size_t)efc;
    p.capacity = (size_t)cap;
    p.seed = seed;
    ny_hnsw *h = NULL;
    int rc = ny_hnsw_new(&p, &h);
    if (rc != NY_OK) { raise_rc(rc); return -1; }
    if (self->h) ny_hnsw_free(self->h);
    self->h = h;
    self->ef = ef;
    self->num_threads = nt;
    self->next_id = 0;
    self->added = 0;
    idx_sync_params(self);
    return 0;
}

static void Index_dealloc(IndexObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    if (self->h) {
        ny_hnsw *h = self->h;
        self->h = NULL;
        Py_BEGIN_ALLOW_THREADS
        ny_hnsw_free(h);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Index_traverse(IndexObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyObject *Index_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    IndexObject *self = (IndexObject *)type->tp_alloc(type, 0);
    return (PyObject *)self;
}

/* add(vectors, ids=None, num_threads=None) */
static PyObject *Index_add(IndexObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"vectors", "ids", "num_threads"};
    PyObject *v[3] = {NULL, NULL, NULL};
    if (parse_args("add", args, nargs, kwnames, names, 3, 2, 1, v) < 0) return NULL;
    if (!self->h) return raise_closed("Index");
    int nt;
    if (arg_threads(v[2], self->num_threads, &nt) < 0) return NULL;
    fmat m;
    if (fmat_get(v[0], self->dim, "add", &m) < 0) return NULL;
    uint32_t *ids = NULL;
    size_t nids = 0;
    PyObject *ret = NULL;
    if (v[1] && v[1] != Py_None) {
        if (ids_get(v[1], "add", &ids, &nids, NULL) < 0) goto out;
        if (nids != m.n) {
            PyErr_Format(InvalidArgumentError, "add: %zu vectors but %zu ids", m.n, nids);
            goto out;
        }
        if (check_unique(ids, nids, "add") < 0) goto out;
    }
    Py_ssize_t bad = first_nonfinite(m.data, m.n, self->dim);
    if (bad >= 0) {
        PyErr_Format(InvalidArgumentError, "add: vector %zd contains NaN or infinity", bad);
        goto out;
    }
    ny_hnsw *h = idx_enter(self);
    if (!h) goto out;
    uint32_t first = 0;
    if (ids) {
        for (size_t i = 0; i < nids; i++)
            if (ny_hnsw_contains(h, ids[i])) {
                idx_leave(self);
                PyErr_Format(AlreadyExistsError, "add: id %u is already in the index", ids[i]);
                goto out;
            }
        for (size_t i = 0; i < nids; i++) /* before the GIL is released: see below */
            if ((uint64_t)ids[i] + 1 > self->next_id) self->next_id = (uint64_t)ids[i] + 1;
    } else {
        if (self->next_id + m.n > (uint64_t)NY_PY_MAX_ID + 1) {
            idx_leave(self);
            PyErr_Format(FullError, "add: no room for %zu more ids below 2^32-1", m.n);
            goto out;
        }
        first = (uint32_t)self->next_id;
        self->next_id += m.n; /* reserved before the GIL is released */
    }
    int rc = NY_OK;
    if (m.n) {
        Py_BEGIN_ALLOW_THREADS
        if (m.n == 1) rc = ny_hnsw_add(h, ids ? ids[0] : first, m.data);
        else rc = ny_hnsw_add_batch(h, ids, first, m.data, m.n, nt);
        /* A quantizer set before there were enough vectors trains now. */
        if (rc == NY_OK) {
            int tr = ny_hnsw_quant_train_if_due(h);
            if (tr < 0) rc = tr;
        }
        Py_END_ALLOW_THREADS
    }
    idx_leave(self);
    if (rc != NY_OK) {
        raise_rc(rc);
        /* a batch may have been applied in part: recount */
        if (self->h) idx_sync_params(self);
        goto out;
    }
    self->added += m.n;
    if (ids) {
        ret = Py_NewRef(Py_None);
    } else {
        ret = PyObject_CallFunction((PyObject *)&PyRange_Type, "KK", (unsigned long long)first,
                                    (unsigned long long)first + m.n);
    }
out:
    fmat_release(&m);
    free(ids);
    return ret;
}

/* The allowed-id set of a search (filter_ids=): a bitmap when it is dense
 * enough, else a sorted array probed by binary search, so that a few large
 * ids never cost a bitmap of 2^32 bits. */
typedef struct idset {
    uint64_t *bits;
    uint32_t *sorted;
    size_t n;
} idset;

static int idset_allow(uint32_t id, void *ctx)
{
    const idset *s = ctx;
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->sorted[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n && s->sorted[lo] == id;
}

static void idset_free(idset *s)
{
    free(s->bits);
    free(s->sorted);
    memset(s, 0, sizeof *s);
}

static int build_filter(PyObject *obj, ny_filter *f, idset *set)
{
    uint32_t *ids;
    size_t n;
    memset(set, 0, sizeof *set);
    memset(f, 0, sizeof *f);
    if (ids_get(obj, "filter_ids", &ids, &n, NULL) < 0) return -1;
    uint32_t mx = 0;
    for (size_t i = 0; i < n; i++) if (ids[i] > mx) mx = ids[i];
    size_t nbits = n ? (size_t)mx + 1 : 0;
    size_t words = (nbits + 63) / 64;
    if (words <= 4096 || words <= 8 * n) {
        set->bits = calloc(words ? words : 1, sizeof(uint64_t));
        if (!set->bits) { free(ids); PyErr_NoMemory(); return -1; }
        for (size_t i = 0; i < n; i++) set->bits[ids[i] >> 6] |= 1ull << (ids[i] & 63);
        free(ids);
        f->bitmap = set->bits;
        f->nbits = nbits;
        return 0;
    }
    qsort(ids, n, sizeof *ids, cmp_u32);
    set->sorted = ids;
    set->n = n;
    f->allow = idset_allow;
    f->ctx = set;
    return 0;
}

/* Widens the engine's uint32 ids (written into the first half of the int64
 * array) in place, backwards, and turns distances into scores. */
static void finish_results(void *ids_mem, float *dists, size_t total, ny_metric metric)
{
    unsigned char *mem = ids_mem;
    for (size_t i = total; i-- > 0;) {
        uint32_t id;
        memcpy(&id, mem + 4 * i, 4);
        int64_t out = id == UINT32_MAX ? -1 : (int64_t)id;
        memcpy(mem + 8 * i, &out, 8);
        dists[i] = id == UINT32_MAX ? NAN : ny_score(metric, dists[i]);
    }
}

/* search(queries, k=10, ef=None, filter_ids=None, num_threads=None, exact=False,
 *        quantization=None)
 * With a quantizer set (set_quantization) the graph walk runs on codes and
 * rescores oversampling * k candidates, unless quantization={"ignore": True}. */
static PyObject *Index_search(IndexObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"queries", "k", "ef", "filter_ids", "num_threads", "exact", "quantization"};
    PyObject *v[7] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (parse_args("search", args, nargs, kwnames, names, 7, 4, 1, v) < 0) return NULL;
    if (!self->h) return raise_closed("Index");
    size_t k, ef;
    int nt, exact, q_ignore = 0, q_rescore = -1;
    float q_os = 0;
    if (arg_size(v[1], "k", 10, 1, &k) < 0 || arg_size(v[2], "ef", self->ef, 1, &ef) < 0 ||
        arg_threads(v[4], self->num_threads, &nt) < 0 || (exact = arg_bool(v[5], 0)) < 0 ||
        quant_params(v[6], &q_ignore, &q_rescore, &q_os) < 0)
        return NULL;
    /* The result width is capped by the number of vectors ever added
     * (tracked here, without a call into the engine): no allocation or
     * engine heap larger than the index, whatever k is. */
    if (k > self->added) k = (size_t)self->added;
    if (ef > self->added) ef = self->added > k ? (size_t)self->added : k;
    fmat q;
    if (fmat_get(v[0], self->dim, "search", &q) < 0) return NULL;
    PyObject *ids_arr = NULL, *sc_arr = NULL, *ret = NULL;
    idset set = {NULL, NULL, 0};
    ny_filter filt, *fp = NULL;
    Py_ssize_t bad = first_nonfinite(q.data, q.n, self->dim);
    if (bad >= 0) {
        PyErr_Format(InvalidArgumentError, "search: query %zd contains NaN or infinity", bad);
        goto out;
    }
    if (v[3] && v[3] != Py_None) {
        if (build_filter(v[3], &filt, &set) < 0) goto out;
        fp = &filt;
    }
    if (q.n && k > (size_t)PY_SSIZE_T_MAX / 8 / q.n) { PyErr_NoMemory(); goto out; }
    if (q.single) {
        ids_arr = np_new(1, (Py_ssize_t)k, 0, DT_INT64);
        sc_arr = ids_arr ? np_new(1, (Py_ssize_t)k, 0, DT_FLOAT32) : NULL;
    } else {
        ids_arr = np_new(2, (Py_ssize_t)q.n, (Py_ssize_t)k, DT_INT64);
        sc_arr = ids_arr ? np_new(2, (Py_ssize_t)q.n, (Py_ssize_t)k, DT_FLOAT32) : NULL;
    }
    if (!sc_arr) goto out;
    void *idm = np_data(ids_arr);
    float *dm = idm ? np_data(sc_arr) : NULL;
    if (!dm) goto out;
    ny_hnsw *h = idx_enter(self);
    if (!h) goto out;
    int rc = NY_OK;
    size_t nq = q.n;
    const float *qd = q.data;
    ny_metric metric = self->metric;
    Py_BEGIN_ALLOW_THREADS
    uint32_t *ido = idm;
    if (k == 0 || nq == 0) {
        /* empty index or no queries: nothing to ask the engine */
    } else if (nq == 1 || exact) {
        for (size_t i = 0; i < nq && rc >= 0; i++) {
            uint32_t *oi = ido + i * k;
            float *od = dm + i * k;
            int got = exact      ? ny_hnsw_search_exact(h, qd + i * self->dim, k, fp, oi, od)
                      : q_ignore ? ny_hnsw_search(h, qd + i * self->dim, k, ef, fp, oi, od)
                                 : ny_hnsw_search_quant(h, qd + i * self->dim, k, ef, fp, q_rescore, q_os, oi, od);
            if (got < 0) { rc = got; break; }
            for (size_t j = (size_t)got; j < k; j++) { oi[j] = UINT32_MAX; od[j] = INFINITY; }
        }
    } else if (q_ignore) {
        rc = ny_hnsw_search_batch(h, qd, nq, k, ef, fp, nt, ido, dm);
    } else {
        /* Without a quantizer this is the float search. */
        rc = ny_hnsw_search_quant_batch(h, qd, nq, k, ef, fp, q_rescore, q_os, nt, ido, dm);
    }
    Py_END_ALLOW_THREADS
    idx_leave(self);
    if (rc < 0) { raise_rc(rc); goto out; }
    finish_results(idm, dm, nq * k, metric);
    ret = PyTuple_Pack(2, ids_arr, sc_arr);
out:
    Py_XDECREF(ids_arr);
    Py_XDECREF(sc_arr);
    idset_free(&set);
    fmat_release(&q);
    return ret;
}

/* delete(ids) */
static PyObject *Index_delete(IndexObject *self, PyObject *ids_obj)
{
    if (!self->h) return raise_closed("Index");
    uint32_t *ids;
    size_t n;
    if (ids_get(ids_obj, "delete", &ids, &n, NULL) < 0) return NULL;
    if (check_unique(ids, n, "delete") < 0) { free(ids); return NULL; }
    ny_hnsw *h = idx_enter(self);
    if (!h) { free(ids); return NULL; }
    for (size_t i = 0; i < n; i++)
        if (!ny_hnsw_contains(h, ids[i])) {
            idx_leave(self);
            PyErr_Format(NotFoundError, "delete: id %u is not in the index", ids[i]);
            free(ids);
            return NULL;
        }
    int rc = NY_OK;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < n && rc == NY_OK; i++) rc = ny_hnsw_delete(h, ids[i]);
    Py_END_ALLOW_THREADS
    idx_leave(self);
    free(ids);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* get_vectors(ids) -> float32 array (n, dim), or (dim,) for one int id. */
static PyObject *Index_get_vectors(IndexObject *self, PyObject *ids_obj)
{
    if (!self->h) return raise_closed("Index");
    uint32_t *ids;
    size_t n;
    int single;
    if (ids_get(ids_obj, "get_vectors", &ids, &n, &single) < 0) return NULL;
    PyObject *arr = single ? np_new(1, (Py_ssize_t)self->dim, 0, DT_FLOAT32)
                           : np_new(2, (Py_ssize_t)n, (Py_ssize_t)self->dim, DT_FLOAT32);
    float *out = arr ? np_data(arr) : NULL;
    if (!out) { free(ids); Py_XDECREF(arr); return NULL; }
    ny_hnsw *h = idx_enter(self);
    if (!h) { free(ids); Py_DECREF(arr); return NULL; }
    int rc = NY_OK;
    size_t i = 0, dim = self->dim;
    Py_BEGIN_ALLOW_THREADS
    for (; i < n; i++) {
        rc = ny_hnsw_contains(h, ids[i]) ? ny_hnsw_get_vector(h, ids[i], out + i * dim) : NY_ENOTFOUND;
        if (rc != NY_OK) break;
    }
    Py_END_ALLOW_THREADS
    idx_leave(self);
    if (rc == NY_ENOTFOUND) {
        PyErr_Format(NotFoundError, "get_vectors: id %u is not in the index", ids[i]);
        free(ids);
        Py_DECREF(arr);
        return NULL;
    }
    free(ids);
    if (rc != NY_OK) { Py_DECREF(arr); return raise_rc(rc); }
    return arr;
}

static int fs_path(PyObject *o, PyObject **bytes)
{
    if (!PyUnicode_FSConverter(o, bytes)) return -1;
    return 0;
}

static PyObject *Index_save(IndexObject *self, PyObject *path)
{
    PyObject *b;
    if (fs_path(path, &b) < 0) return NULL;
    ny_hnsw *h = idx_enter(self);
    if (!h) { Py_DECREF(b); return NULL; }
    int rc;
    const char *p = PyBytes_AS_STRING(b);
    Py_BEGIN_ALLOW_THREADS
    rc = ny_hnsw_save(h, p);
    Py_END_ALLOW_THREADS
    idx_leave(self);
    Py_DECREF(b);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Index_load(PyObject *cls, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"path", "ef", "num_threads"};
    PyObject *v[3] = {NULL, NULL, NULL};
    if (parse_args("load", args, nargs, kwnames, names, 3, 1, 1, v) < 0) return NULL;
    size_t ef;
    int nt;
    if (arg_size(v[1], "ef", 0, 1, &ef) < 0 || arg_threads(v[2], 0, &nt) < 0) return NULL;
    PyObject *b;
    if (fs_path(v[0], &b) < 0) return NULL;
    ny_hnsw *h = NULL;
    int rc;
    const char *p = PyBytes_AS_STRING(b);
    Py_BEGIN_ALLOW_THREADS
    rc = ny_hnsw_load(p, &h);
    Py_END_ALLOW_THREADS
    Py_DECREF(b);
    if (rc != NY_OK) return raise_rc(rc);
    PyTypeObject *type = (PyTypeObject *)cls;
    IndexObject *self = (IndexObject *)type->tp_alloc(type, 0);
    if (!self) { ny_hnsw_free(h); return NULL; }
    self->h = h;
    self->ef = ef;
    self->num_threads = nt;
    idx_sync_params(self);
    return (PyObject *)self;
}

static PyObject *Index_vacuum(IndexObject *self, PyObject *unused)
{
    ny_hnsw *h = idx_enter(self);
    if (!h) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_hnsw_vacuum(h);
    Py_END_ALLOW_THREADS
    idx_leave(self);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Index_close(IndexObject *self, PyObject *unused)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Index.close(): the index is in use by another thread");
        return NULL;
    }
    if (self->h) {
        ny_hnsw *h = self->h;
        self->h = NULL;
        Py_BEGIN_ALLOW_THREADS
        ny_hnsw_free(h);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *Index_enter(IndexObject *self, PyObject *unused)
{
    if (!self->h) return raise_closed("Index");
    return Py_NewRef(self);
}

static PyObject *Index_exit(IndexObject *self, PyObject *args)
{
    PyObject *r = Index_close(self, NULL);
    if (!r) return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

/* set_quantization(config): Qdrant's quantization_config as a dict (or
 * its JSON text); None removes it. */
static PyObject *Index_set_quantization(IndexObject *self, PyObject *cfg)
{
    PyObject *js = NULL;
    if (cfg != Py_None) {
        if (PyUnicode_Check(cfg)) js = Py_NewRef(cfg);
        else if (PyDict_Check(cfg)) js = to_json(cfg);
        else {
            PyErr_SetString(InvalidArgumentError,
                            "set_quantization: expected a dict such as {'scalar': {'type': 'int8'}} or "
                            "{'binary': {}}, or None");
            return NULL;
        }
        if (!js) return NULL;
    }
    const char *j = js ? PyUnicode_AsUTF8(js) : NULL;
    if (js && !j) { Py_DECREF(js); return NULL; }
    ny_hnsw *h = idx_enter(self);
    if (!h) { Py_XDECREF(js); return NULL; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_hnsw_set_quantization(h, j);
    Py_END_ALLOW_THREADS
    idx_leave(self);
    Py_XDECREF(js);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* train_quantization(): (re)trains on the current vectors, whatever their count. */
static PyObject *Index_train_quantization(IndexObject *self, PyObject *unused)
{
    ny_hnsw *h = idx_enter(self);
    if (!h) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_hnsw_quant_train(h);
    Py_END_ALLOW_THREADS
    idx_leave(self);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

/* to_disk(dir, vectors=True, graph=True) -> {"vectors": bytes, "graph": bytes} */
static PyObject *Index_to_disk(IndexObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"dir", "vectors", "graph"};
    PyObject *v[3] = {NULL, NULL, NULL};
    if (parse_args("to_disk", args, nargs, kwnames, names, 3, 3, 1, v) < 0) return NULL;
    int wv, wg;
    if ((wv = arg_bool(v[1], 1)) < 0 || (wg = arg_bool(v[2], 1)) < 0) return NULL;
    PyObject *b;
    if (fs_path(v[0], &b) < 0) return NULL;
    ny_hnsw *h = idx_enter(self);
    if (!h) { Py_DECREF(b); return NULL; }
    int rc = NY_OK;
    size_t bv = 0, bg = 0;
    const char *p = PyBytes_AS_STRING(b);
    Py_BEGIN_ALLOW_THREADS
    if (wv) rc = ny_hnsw_vectors_to_disk(h, p, NULL);
    if (rc == NY_OK && wg) rc = ny_hnsw_graph_to_disk(h, p, NULL);
    ny_hnsw_disk_usage(h, &bv, &bg);
    Py_END_ALLOW_THREADS
    idx_leave(self);
    Py_DECREF(b);
    if (rc != NY_OK) return raise_rc(rc);
    return Py_BuildValue("{s:n,s:n}", "vectors", (Py_ssize_t)bv, "graph", (Py_ssize_t)bg);
}

static PyObject *Index_get_quantization(IndexObject *self, void *c)
{
    if (!self->h) return raise_closed("Index");
    char *j = NULL;
    int rc = ny_hnsw_get_quantization(self->h, &j);
    if (rc != NY_OK) return raise_rc(rc);
    if (!j) Py_RETURN_NONE;
    PyObject *r = from_json(j);
    ny_free(j);
    return r;
}

static PyObject *Index_stats(IndexObject *self, PyObject *unused)
{
    if (!self->h) return raise_closed("Index");
    ny_hnsw_stats st;
    ny_hnsw_get_stats(self->h, &st);
    size_t dv = 0, dg = 0;
    ny_hnsw_disk_usage(self->h, &dv, &dg);
    return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:s,s:n,s:n,s:i,s:n,s:n,s:n,s:n,s:O,s:n,s:n}", "count", (Py_ssize_t)st.count,
                         "deleted", (Py_ssize_t)st.deleted, "capacity", (Py_ssize_t)st.capacity, "max_id",
                         (Py_ssize_t)st.max_id, "dim", (Py_ssize_t)st.dim, "metric", ny_metric_name(st.metric),
                         "m", (Py_ssize_t)st.m, "ef_construction", (Py_ssize_t)st.ef_construction, "max_level",
                         st.max_level, "bytes_vectors", (Py_ssize_t)st.bytes_vectors, "bytes_graph",
                         (Py_ssize_t)st.bytes_graph, "bytes_other", (Py_ssize_t)st.bytes_other, "bytes_quant",
                         (Py_ssize_t)ny_hnsw_quant_bytes(self->h), "quant_ready",
                         ny_hnsw_quant_ready(self->h) ? Py_True : Py_False, "bytes_vectors_on_disk", (Py_ssize_t)dv,
                         "bytes_graph_on_disk", (Py_ssize_t)dg);
}

static Py_ssize_t Index_len(IndexObject *self)
{
    if (!self->h) { raise_closed("Index"); return -1; }
    ny_hnsw_stats st;
    ny_hnsw_get_stats(self->h, &st);
    return (Py_ssize_t)st.count;
}

static int Index_contains(IndexObject *self, PyObject *key)
{
    if (!self->h) { raise_closed("Index"); return -1; }
    if (PyBool_Check(key) || !PyIndex_Check(key)) return 0;
    PyObject *i = PyNumber_Index(key);
    if (!i) return -1;
    int of = 0;
    long long v = PyLong_AsLongLongAndOverflow(i, &of);
    Py_DECREF(i);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (of || v < 0 || v > (long long)NY_PY_MAX_ID) return 0;
    if (!self->h) { raise_closed("Index"); return -1; }
    return ny_hnsw_contains(self->h, (uint32_t)v);
}

static PyObject *Index_repr(IndexObject *self)
{
    if (!self->h) return PyUnicode_FromString("<nearly.Index (closed)>");
    ny_hnsw_stats st;
    ny_hnsw_get_stats(self->h, &st);
    return PyUnicode_FromFormat("<nearly.Index dim=%zu metric='%s' m=%zu ef_construction=%zu len=%zu>", self->dim,
                                ny_metric_name(self->metric), self->m, self->efc, st.count);
}

static PyObject *Index_get_dim(IndexObject *self, void *c) { return PyLong_FromSize_t(self->dim); }
static PyObject *Index_get_metric(IndexObject *self, void *c) { return PyUnicode_FromString(ny_metric_name(self->metric)); }
static PyObject *Index_get_m(IndexObject *self, void *c) { return PyLong_FromSize_t(self->m); }
static PyObject *Index_get_efc(IndexObject *self, void *c) { return PyLong_FromSize_t(self->efc); }
static PyObject *Index_get_closed(IndexObject *self, void *c) { return PyBool_FromLong(self->h == NULL); }
static PyObject *Index_get_ef(IndexObject *self, void *c)
{
    if (!self->ef) Py_RETURN_NONE;
    return PyLong_FromSize_t(self->ef);
}
static int Index_set_ef(IndexObject *self, PyObject *val, void *c)
{
    size_t ef;
    if (!val) { PyErr_SetString(PyExc_AttributeError, "cannot delete ef"); return -1; }
    if (arg_size(val, "ef", 0, 1, &ef) < 0) return -1;
    self->ef = ef;
    return 0;
}
static PyObject *Index_get_threads(IndexObject *self, void *c) { return PyLong_FromLong(self->num_threads); }
static int Index_set_threads(IndexObject *self, PyObject *val, void *c)
{
    if (!val) { PyErr_SetString(PyExc_AttributeError, "cannot delete num_threads"); return -1; }
    return arg_threads(val, 0, &self->num_threads);
}
static PyObject *Index_get_max_id(IndexObject *self, void *c)
{
    if (!self->h) return raise_closed("Index");
    ny_hnsw_stats st;
    ny_hnsw_get_stats(self->h, &st);
    return PyLong_FromSize_t(st.max_id);
}

static PyGetSetDef Index_getset[] = {
    {"dim", (getter)Index_get_dim, NULL, "Vector dimension.", NULL},
    {"metric", (getter)Index_get_metric, NULL, "Metric name: 'cosine', 'l2' or 'dot'.", NULL},
    {"m", (getter)Index_get_m, NULL, "HNSW M (links per node on upper layers; 2*M on layer 0).", NULL},
    {"ef_construction", (getter)Index_get_efc, NULL, "HNSW beam width used while inserting.", NULL},
    {"ef", (getter)Index_get_ef, (setter)Index_set_ef,
     "Default search beam (None: the engine's default); raised to k when smaller.", NULL},
    {"num_threads", (getter)Index_get_threads, (setter)Index_set_threads,
     "Default number of threads for batch add/search (0: all CPUs).", NULL},
    {"max_id", (getter)Index_get_max_id, NULL, "Highest id ever inserted + 1.", NULL},
    {"closed", (getter)Index_get_closed, NULL, "True after close().", NULL},
    {"quantization", (getter)Index_get_quantization, NULL,
     "The quantization config (Qdrant's quantization_config schema) as a dict, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef Index_methods[] = {
    {"add", (PyCFunction)(void (*)(void))Index_add, METH_FASTCALL | METH_KEYWORDS,
     "add($self, vectors, ids=None, num_threads=None)\n--\n\n"
     "Inserts vectors (shape (n, dim) or (dim,)).  ids: integers in [0, 2^32-2], one per vector;\n"
     "None assigns consecutive ids after the highest id used so far and returns them as a range.\n"
     "The batch is checked first (dimension, NaN/inf, repeated or existing ids): on such an\n"
     "error nothing is inserted.  Runs without the GIL, on num_threads threads (0: all CPUs)."},
    {"search", (PyCFunction)(void (*)(void))Index_search, METH_FASTCALL | METH_KEYWORDS,
     "search($self, queries, k=10, ef=None, filter_ids=None, num_threads=None, exact=False,\n"
     "       quantization=None)\n--\n\n"
     "k nearest neighbours of each query.  Returns (ids, scores): numpy int64 and float32 arrays of\n"
     "shape (nq, k), or (k,) for a single 1-D query, nearest first.  Scores follow Qdrant: cosine\n"
     "similarity for 'cosine', dot product for 'dot', Euclidean distance for 'l2'.  Slots without a\n"
     "result (fewer than k vectors match) hold id -1 and score NaN.  filter_ids restricts results to\n"
     "those ids.  exact=True scans every vector (brute force).  k is capped at the number of vectors\n"
     "ever added.  Runs without the GIL; a batch uses num_threads threads (0: all CPUs).  After\n"
     "set_quantization() the graph walk runs on codes and the best oversampling*k candidates are\n"
     "rescored with the float vectors; quantization={'ignore': bool, 'rescore': bool,\n"
     "'oversampling': float} changes that per call (Qdrant's params.quantization)."},
    {"delete", (PyCFunction)Index_delete, METH_O,
     "delete($self, ids)\n--\n\nDeletes one id or a sequence of ids.  NotFoundError (nothing deleted) if one is absent."},
    {"get_vectors", (PyCFunction)Index_get_vectors, METH_O,
     "get_vectors($self, ids)\n--\n\nStored vectors (unit-normalised for 'cosine') as float32, shape (n, dim) or (dim,)."},
    {"save", (PyCFunction)Index_save, METH_O,
     "save($self, path)\n--\n\nWrites the index to path atomically (temporary file, fsync, rename).  Runs without the GIL."},
    {"load", (PyCFunction)(void (*)(void))Index_load, METH_FASTCALL | METH_KEYWORDS | METH_CLASS,
     "load($cls, path, ef=None, num_threads=None)\n--\n\nLoads an index written by save().  CorruptError on a bad file."},
    {"vacuum", (PyCFunction)Index_vacuum, METH_NOARGS,
     "vacuum($self)\n--\n\nReclaims deleted vectors' slots and links (also runs automatically once deleted\n"
     "vectors reach 1/4 of the live ones).  Searches continue meanwhile; runs without the GIL."},
    {"close", (PyCFunction)Index_close, METH_NOARGS,
     "close($self)\n--\n\nFrees the index.  Further use raises ClosedError.  Idempotent."},
    {"stats", (PyCFunction)Index_stats, METH_NOARGS, "stats($self)\n--\n\nCounts and memory use as a dict."},
    {"set_quantization", (PyCFunction)Index_set_quantization, METH_O,
     "set_quantization($self, config, /)\n--\n\nSearch on quantized codes: config is Qdrant's quantization_config, "
     "e.g. {'scalar': {'type': 'int8', 'quantile': 0.99}} or {'binary': {}}; None removes it.  Trains and encodes "
     "now when the index holds >= 1000 vectors, else at the first search that has enough."},
    {"train_quantization", (PyCFunction)Index_train_quantization, METH_NOARGS,
     "train_quantization($self)\n--\n\n(Re)trains the quantizer on the current vectors (any count) and "
     "re-encodes them all."},
    {"to_disk", (PyCFunction)(void (*)(void))Index_to_disk, METH_FASTCALL | METH_KEYWORDS,
     "to_disk($self, dir, vectors=True, graph=True)\n--\n\nMoves the float vectors and/or the graph's links "
     "into unnamed memory-mapped files in dir (same addresses; the kernel may evict them).  Returns the bytes "
     "held in files: {'vectors': ..., 'graph': ...}."},
    {"__enter__", (PyCFunction)Index_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Index_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Index_as_sequence = {
    .sq_length = (lenfunc)Index_len,
    .sq_contains = (objobjproc)Index_contains,
};

static PyTypeObject IndexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nearly.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Index(dim, metric='cosine', m=16, ef_construction=200, *, capacity=0, seed=42, ef=None, num_threads=0)\n"
              "--\n\n"
              "An in-memory HNSW index of float32 vectors under integer ids in [0, 2^32-2].\n"
              "metric: 'cosine' (vectors normalised at insert), 'l2' or 'dot'.",
    .tp_new = Index_new,
    .tp_init = (initproc)Index_init,
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_traverse = (traverseproc)Index_traverse,
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_as_sequence = &Index_as_sequence,
    .tp_repr = (reprfunc)Index_repr,
    .tp_weaklistoffset = offsetof(IndexObject, weakreflist),
};

/* ===== Point ids ========================================================= */

static int pid_from_py(PyObject *o, ny_point_id *out, const char *what)
{
    memset(out, 0, sizeof *out);
    if (PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s: point ids are integers or UUIDs, not bool", what);
        return -1;
    }
    if (PyLong_Check(o) || PyIndex_Check(o)) {
        PyObject *i = PyNumber_Index(o);
        if (!i) return -1;
        unsigned long long v = PyLong_AsUnsignedLongLong(i);
        Py_DECREF(i);
        if (v == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(InvalidArgumentError, "%s: integer point ids must be in [0, 2^64-1]", what);
            return -1;
        }
        out->num = v;
        return 0;
    }
    PyObject *s = NULL;
    if (PyUnicode_Check(o)) s = Py_NewRef(o);
    else {
        if (ensure_uuid() < 0) return -1;
        int r = PyObject_IsInstance(o, uuid_class);
        if (r < 0) return -1;
        if (!r) {
            PyErr_Format(PyExc_TypeError, "%s: point ids are integers, UUID strings or uuid.UUID, not %.100s",
                         what, Py_TYPE(o)->tp_name);
            return -1;
        }
        s = PyObject_Str(o);
        if (!s) return -1;
    }
    const char *u = PyUnicode_AsUTF8(s);
    int rc = u ? ny_point_id_parse(u, out) : NY_EINVAL;
    Py_DECREF(s);
    if (!u) return -1;
    if (rc != NY_OK) { raise_rc(rc); return -1; }
    return 0;
}

static PyObject *pid_to_py(const ny_point_id *id)
{
    if (!id->is_uuid) return PyLong_FromUnsignedLongLong(id->num);
    char buf[37];
    ny_point_id_format(id, buf);
    return PyUnicode_FromString(buf);
}

/* One id or a sequence of ids -> malloc'd array. */
static int pids_get(PyObject *o, const char *what, ny_point_id **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int one = PyLong_Check(o) || PyUnicode_Check(o) || PyBool_Check(o);
    if (!one && !PySequence_Check(o)) one = 1; /* uuid.UUID, numpy integer, ... */
    if (one) {
        *out = malloc(sizeof **out);
        if (!*out) { PyErr_NoMemory(); return -1; }
        if (pid_from_py(o, *out, what) < 0) { free(*out); *out = NULL; return -1; }
        *n = 1;
        return 0;
    }
    PyObject *seq = PySequence_Fast(o, "point ids must be a sequence");
    if (!seq) return -1;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    *out = malloc(((size_t)len + 1) * sizeof **out);
    if (!*out) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < len; i++)
        if (pid_from_py(PySequence_Fast_GET_ITEM(seq, i), *out + i, what) < 0) {
            Py_DECREF(seq);
            free(*out);
            *out = NULL;
            return -1;
        }
    Py_DECREF(seq);
    *n = (size_t)len;
    return 0;
}

/* A filter argument: None, a dict (Qdrant Filter) or a JSON string. */
static int filter_arg(PyObject *o, PyObject **json_str, const char **s)
{
    *json_str = NULL;
    *s = NULL;
    if (!o || o == Py_None) return 0;
    if (PyUnicode_Check(o)) *json_str = Py_NewRef(o);
    else if (PyDict_Check(o)) *json_str = to_json(o);
    else {
        PyErr_Format(PyExc_TypeError, "filter must be a dict (a Qdrant Filter) or None, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if (!*json_str) return -1;
    *s = PyUnicode_AsUTF8(*json_str);
    if (!*s) { Py_CLEAR(*json_str); return -1; }
    return 0;
}

/* with_payload: True/False/list of keys/{"include"|"exclude": [...]}. */
static int payload_sel_arg(PyObject *o, PyObject **json_str, const char **s)
{
    *json_str = NULL;
    *s = NULL;
    if (!o) o = Py_True;
    if (o == Py_False || o == Py_None) return 0;
    if (o == Py_True) { *s = "true"; return 0; }
    if (!PyList_Check(o) && !PyTuple_Check(o) && !PyDict_Check(o)) {
        PyErr_Format(PyExc_TypeError, "with_payload must be a bool, a list of keys or a dict, not %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    PyObject *lst = PyTuple_Check(o) ? PySequence_List(o) : Py_NewRef(o);
    if (!lst) return -1;
    *json_str = to_json(lst);
    Py_DECREF(lst);
    if (!*json_str) return -1;
    *s = PyUnicode_AsUTF8(*json_str);
    if (!*s) { Py_CLEAR(*json_str); return -1; }
    return 0;
}

static PyStructSequence_Field record_fields[] = {
    {"id", "point id (int or UUID string)"},
    {"score", "search score (Qdrant convention), None for retrieve/scroll"},
    {"payload", "payload dict, None when not requested"},
    {"vector", "numpy float32 vector, None when not requested"},
    {NULL, NULL},
};

static PyStructSequence_Desc record_desc = {
    "nearly.Record", "A point returned by retrieve, scroll or search: (id, score, payload, vector).",
    record_fields, 4,
};

static PyObject *record_to_py(const ny_record *r, size_t dim, int with_score)
{
    PyObject *rec = PyStructSequence_New(&RecordType);
    if (!rec) return NULL;
    PyObject *id = pid_to_py(&r->id);
    if (!id) goto fail;
    PyStructSequence_SET_ITEM(rec, 0, id);
    PyObject *sc = with_score ? PyFloat_FromDouble(r->score) : Py_NewRef(Py_None);
    if (!sc) goto fail;
    PyStructSequence_SET_ITEM(rec, 1, sc);
    PyObject *pl = r->payload_json ? from_json(r->payload_json) : Py_NewRef(Py_None);
    if (!pl) goto fail;
    PyStructSequence_SET_ITEM(rec, 2, pl);
    PyObject *vec;
    if (r->vector) {
        vec = np_new(1, (Py_ssize_t)dim, 0, DT_FLOAT32);
        float *d = vec ? np_data(vec) : NULL;
        if (!d) { Py_XDECREF(vec); goto fail; }
        memcpy(d, r->vector, dim * sizeof(float));
    } else vec = Py_NewRef(Py_None);
    PyStructSequence_SET_ITEM(rec, 3, vec);
    return rec;
fail:
    Py_DECREF(rec);
    return NULL;
}

static PyObject *records_to_list(const ny_records *rs, size_t dim, int with_score)
{
    PyObject *l = PyList_New((Py_ssize_t)rs->n);
    if (!l) return NULL;
    for (size_t i = 0; i < rs->n; i++) {
        PyObject *r = record_to_py(&rs->items[i], dim, with_score);
        if (!r) { Py_DECREF(l); return NULL; }
        PyList_SET_ITEM(l, (Py_ssize_t)i, r);
    }
    return l;
}

/* ===== Database and Collection =========================================== */

typedef struct CollectionObject CollectionObject;

typedef struct {
    PyObject_HEAD
    ny_db *db;
    PyObject *path;
    Py_ssize_t busy; /* calls in flight without the GIL, here or in a collection */
    CollectionObject *colls; /* live Collection objects (borrowed), to close with the db */
    PyObject *weakreflist;
} DatabaseObject;

struct CollectionObject {
    PyObject_HEAD
    DatabaseObject *dbo; /* strong reference */
    ny_collection *c;
    size_t dim;
    ny_metric metric;
    PyObject *name;
    Py_ssize_t busy;
    CollectionObject *prev, *next;
    PyObject *weakreflist;
};

static PyTypeObject DatabaseType, CollectionType;

static void coll_unlink(CollectionObject *co)
{
    if (!co->dbo) return;
    if (co->prev) co->prev->next = co->next;
    else if (co->dbo->colls == co) co->dbo->colls = co->next;
    if (co->next) co->next->prev = co->prev;
    co->prev = co->next = NULL;
}

static ny_collection *coll_enter(CollectionObject *self)
{
    if (!self->c || !self->dbo || !self->dbo->db) { raise_closed("Collection"); return NULL; }
    self->busy++;
    self->dbo->busy++;
    return self->c;
}

static void coll_leave(CollectionObject *self)
{
    self->busy--;
    self->dbo->busy--;
}

static void coll_drop_handle(CollectionObject *co)
{
    if (co->c) {
        ny_collection *c = co->c;
        co->c = NULL;
        ny_collection_release(c);
    }
}

static PyObject *db_new_collection_object(DatabaseObject *dbo, ny_collection *c)
{
    CollectionObject *co = PyObject_GC_New(CollectionObject, &CollectionType);
    if (!co) { ny_collection_release(c); return NULL; }
    co->dbo = (DatabaseObject *)Py_NewRef(dbo);
    co->c = c;
    co->dim = ny_collection_dim(c);
    co->metric = ny_collection_metric(c);
    co->name = PyUnicode_FromString(ny_collection_name(c));
    co->busy = 0;
    co->weakreflist = NULL;
    co->prev = NULL;
    co->next = dbo->colls;
    if (dbo->colls) dbo->colls->prev = co;
    dbo->colls = co;
    if (!co->name) { Py_DECREF(co); return NULL; }
    PyObject_GC_Track(co);
    return (PyObject *)co;
}

static void Collection_dealloc(CollectionObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    coll_unlink(self);
    coll_drop_handle(self);
    Py_CLEAR(self->name);
    Py_CLEAR(self->dbo);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Collection_traverse(CollectionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dbo);
    return 0;
}

static PyObject *Collection_new(PyTypeObject *t, PyObject *a, PyObject *k)
{
    PyErr_SetString(PyExc_TypeError, "Collection objects come from Database.collection() or create_collection()");
    return NULL;
}

static int db_open_check(DatabaseObject *self)
{
    if (!self->db) { raise_closed("Database"); return -1; }
    return 0;
}

static int Database_init(DatabaseObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", NULL};
    PyObject *path;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&:Database", kwlist, PyUnicode_FSConverter, &path)) return -1;
    if (self->db) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "Database is already open");
        return -1;
    }
    ny_db *db = NULL;
    int rc;
    const char *p = PyBytes_AS_STRING(path);
    Py_BEGIN_ALLOW_THREADS
    rc = ny_db_open(p, &db);
    Py_END_ALLOW_THREADS
    if (rc != NY_OK) { Py_DECREF(path); raise_rc(rc); return -1; }
    self->db = db;
    Py_XSETREF(self->path, PyUnicode_DecodeFSDefault(p));
    Py_DECREF(path);
    return self->path ? 0 : -1;
}

static PyObject *Database_tpnew(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    return type->tp_alloc(type, 0);
}

static int db_close_impl(DatabaseObject *self)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Database.close(): the database is in use by another thread");
        return -1;
    }
    for (CollectionObject *co = self->colls; co; co = co->next) coll_drop_handle(co);
    if (self->db) {
        ny_db *db = self->db;
        self->db = NULL;
        Py_BEGIN_ALLOW_THREADS
        ny_db_close(db);
        Py_END_ALLOW_THREADS
    }
    return 0;
}

static void Database_dealloc(DatabaseObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    /* Collections hold a strong reference to us, so none is alive here. */
    self->busy = 0;
    db_close_impl(self);
    Py_CLEAR(self->path);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Database_traverse(DatabaseObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static PyObject *Database_close(DatabaseObject *self, PyObject *unused)
{
    if (db_close_impl(self) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Database_enter(DatabaseObject *self, PyObject *unused)
{
    if (db_open_check(self) < 0) return NULL;
    return Py_NewRef(self);
}

static PyObject *Database_exit(DatabaseObject *self, PyObject *args)
{
    if (db_close_impl(self) < 0) return NULL;
    Py_RETURN_FALSE;
}

static PyObject *db_get(DatabaseObject *self, const char *name)
{
    ny_collection *c = NULL;
    int rc = ny_db_get_collection(self->db, name, &c);
    if (rc != NY_OK) return raise_rc(rc);
    return db_new_collection_object(self, c);
}

/* The CreateCollection body from keyword arguments, merged with config. */
static PyObject *make_config(PyObject *dim, PyObject *metric, PyObject *m, PyObject *efc, PyObject *config)
{
    PyObject *body = config && config != Py_None ? PyDict_Copy(config) : PyDict_New();
    if (!body) return NULL;
    if (config && config != Py_None && !PyDict_Check(config)) {
        Py_DECREF(body);
        PyErr_SetString(PyExc_TypeError, "config must be a dict (Qdrant's CreateCollection body)");
        return NULL;
    }
    if (dim && dim != Py_None) {
        const char *dist = "Cosine";
        if (metric && metric != Py_None) {
            const char *ms = PyUnicode_Check(metric) ? PyUnicode_AsUTF8(metric) : NULL;
            ny_metric mt;
            if (!ms || ny_metric_parse(ms, &mt) != NY_OK) {
                Py_DECREF(body);
                if (!PyErr_Occurred())
                    PyErr_Format(InvalidArgumentError, "unknown metric %R (expected 'cosine', 'l2' or 'dot')", metric);
                return NULL;
            }
            dist = mt == NY_L2 ? "Euclid" : mt == NY_DOT ? "Dot" : "Cosine";
        }
        PyObject *vec = Py_BuildValue("{s:O,s:s}", "size", dim, "distance", dist);
        if (!vec || PyDict_SetItemString(body, "vectors", vec) < 0) { Py_XDECREF(vec); Py_DECREF(body); return NULL; }
        Py_DECREF(vec);
    }
    if ((m && m != Py_None) || (efc && efc != Py_None)) {
        PyObject *h = PyDict_GetItemString(body, "hnsw_config");
        PyObject *hc = h && PyDict_Check(h) ? PyDict_Copy(h) : PyDict_New();
        if (!hc) { Py_DECREF(body); return NULL; }
        if ((m && m != Py_None && PyDict_SetItemString(hc, "m", m) < 0) ||
            (efc && efc != Py_None && PyDict_SetItemString(hc, "ef_construct", efc) < 0) ||
            PyDict_SetItemString(body, "hnsw_config", hc) < 0) {
            Py_DECREF(hc);
            Py_DECREF(body);
            return NULL;
        }
        Py_DECREF(hc);
    }
    return body;
}

static PyObject *db_create(DatabaseObject *self, const char *name, PyObject *body)
{
    PyObject *js = to_json(body);
    if (!js) return NULL;
    const char *s = PyUnicode_AsUTF8(js);
    if (!s) { Py_DECREF(js); return NULL; }
    if (db_open_check(self) < 0) { Py_DECREF(js); return NULL; }
    int rc;
    ny_db *db = self->db;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_db_create_collection(db, name, s);
    Py_END_ALLOW_THREADS
    self->busy--;
    Py_DECREF(js);
    if (rc != NY_OK) return raise_rc(rc);
    return db_get(self, name);
}

/* create_collection(name, dim=None, metric="cosine", *, m=None, ef_construction=None, config=None) */
static PyObject *Database_create_collection(DatabaseObject *self, PyObject *const *args, Py_ssize_t nargs,
                                            PyObject *kwnames)
{
    static const char *const names[] = {"name", "dim", "metric", "m", "ef_construction", "config"};
    PyObject *v[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (parse_args("create_collection", args, nargs, kwnames, names, 6, 3, 1, v) < 0) return NULL;
    if (db_open_check(self) < 0) return NULL;
    if (!PyUnicode_Check(v[0])) { PyErr_SetString(PyExc_TypeError, "name must be a str"); return NULL; }
    if ((!v[1] || v[1] == Py_None) && (!v[5] || v[5] == Py_None)) {
        PyErr_SetString(PyExc_TypeError, "create_collection() needs dim (or a config dict with 'vectors')");
        return NULL;
    }
    PyObject *body = make_config(v[1], v[2], v[3], v[4], v[5]);
    if (!body) return NULL;
    const char *name = PyUnicode_AsUTF8(v[0]);
    PyObject *r = name ? db_create(self, name, body) : NULL;
    Py_DECREF(body);
    return r;
}

/* collection(name, dim=None, metric="cosine", *, m=None, ef_construction=None, config=None):
 * opens an existing collection; creates it when missing and dim/config is given. */
static PyObject *Database_collection(DatabaseObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"name", "dim", "metric", "m", "ef_construction", "config"};
    PyObject *v[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (parse_args("collection", args, nargs, kwnames, names, 6, 3, 1, v) < 0) return NULL;
    if (db_open_check(self) < 0) return NULL;
    if (!PyUnicode_Check(v[0])) { PyErr_SetString(PyExc_TypeError, "name must be a str"); return NULL; }
    const char *name = PyUnicode_AsUTF8(v[0]);
    if (!name) return NULL;
    ny_collection *c = NULL;
    int rc = ny_db_get_collection(self->db, name, &c);
    if (rc == NY_OK) {
        PyObject *co = db_new_collection_object(self, c);
        if (co && v[1] && v[1] != Py_None) {
            size_t want;
            if (arg_size(v[1], "dim", 0, 1, &want) < 0) { Py_DECREF(co); return NULL; }
            if (want != ((CollectionObject *)co)->dim) {
                PyErr_Format(DimensionError, "collection '%s' has dimension %zu, not %zu", name,
                             ((CollectionObject *)co)->dim, want);
                Py_DECREF(co);
                return NULL;
            }
        }
        return co;
    }
    if (rc != NY_ENOTFOUND || ((!v[1] || v[1] == Py_None) && (!v[5] || v[5] == Py_None))) return raise_rc(rc);
    PyObject *body = make_config(v[1], v[2], v[3], v[4], v[5]);
    if (!body) return NULL;
    PyObject *r = db_create(self, name, body);
    Py_DECREF(body);
    return r;
}

static PyObject *Database_drop_collection(DatabaseObject *self, PyObject *name)
{
    if (db_open_check(self) < 0) return NULL;
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (!s) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "name must be a str");
        return NULL;
    }
    int rc;
    ny_db *db = self->db;
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_db_drop_collection(db, s);
    Py_END_ALLOW_THREADS
    self->busy--;
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *json_result(int rc, char *js)
{
    if (rc != NY_OK) return raise_rc(rc);
    PyObject *r = from_json(js);
    ny_free(js);
    return r;
}

static PyObject *Database_list_collections(DatabaseObject *self, PyObject *unused)
{
    if (db_open_check(self) < 0) return NULL;
    char *js = NULL;
    int rc = ny_db_list_collections(self->db, &js);
    return json_result(rc, js);
}

static int Database_contains(DatabaseObject *self, PyObject *name)
{
    if (db_open_check(self) < 0) return -1;
    if (!PyUnicode_Check(name)) return 0;
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return -1;
    ny_collection *c = NULL;
    int rc = ny_db_get_collection(self->db, s, &c);
    if (rc == NY_OK) { ny_collection_release(c); return 1; }
    if (rc == NY_ENOTFOUND) return 0;
    raise_rc(rc);
    return -1;
}

static PyObject *str2_call(DatabaseObject *self, PyObject *args, const char *fmt, int which)
{
    const char *a = NULL, *b = NULL;
    if (!PyArg_ParseTuple(args, fmt, &a, &b)) return NULL;
    if (db_open_check(self) < 0) return NULL;
    int rc = which == 0 ? ny_db_alias_create(self->db, a, b)
           : which == 1 ? ny_db_alias_delete(self->db, a)
                        : ny_db_alias_rename(self->db, a, b);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Database_create_alias(DatabaseObject *self, PyObject *args)
{
    return str2_call(self, args, "ss:create_alias", 0);
}
static PyObject *Database_delete_alias(DatabaseObject *self, PyObject *args)
{
    return str2_call(self, args, "s:delete_alias", 1);
}
static PyObject *Database_rename_alias(DatabaseObject *self, PyObject *args)
{
    return str2_call(self, args, "ss:rename_alias", 2);
}

static PyObject *Database_list_aliases(DatabaseObject *self, PyObject *args)
{
    const char *coll = NULL;
    if (!PyArg_ParseTuple(args, "|z:list_aliases", &coll)) return NULL;
    if (db_open_check(self) < 0) return NULL;
    char *js = NULL;
    int rc = ny_db_alias_list(self->db, coll, &js);
    return json_result(rc, js);
}

static PyObject *Database_restore_snapshot(DatabaseObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"name", "path", "overwrite", NULL};
    const char *name;
    PyObject *path;
    int overwrite = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "sO&|p:restore_snapshot", kwlist, &name, PyUnicode_FSConverter,
                                     &path, &overwrite))
        return NULL;
    if (db_open_check(self) < 0) { Py_DECREF(path); return NULL; }
    int rc;
    ny_db *db = self->db;
    const char *p = PyBytes_AS_STRING(path);
    self->busy++;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_db_restore_snapshot(db, name, p, overwrite);
    Py_END_ALLOW_THREADS
    self->busy--;
    Py_DECREF(path);
    if (rc != NY_OK) return raise_rc(rc);
    return db_get(self, name);
}

static PyObject *Database_get_path(DatabaseObject *self, void *c)
{
    return Py_NewRef(self->path ? self->path : Py_None);
}
static PyObject *Database_get_closed(DatabaseObject *self, void *c) { return PyBool_FromLong(self->db == NULL); }

static PyObject *Database_repr(DatabaseObject *self)
{
    return PyUnicode_FromFormat("<nearly.Database %R%s>", self->path ? self->path : Py_None,
                                self->db ? "" : " (closed)");
}

static PyMethodDef Database_methods[] = {
    {"collection", (PyCFunction)(void (*)(void))Database_collection, METH_FASTCALL | METH_KEYWORDS,
     "collection($self, name, dim=None, metric='cosine', m=None, ef_construction=None, config=None)\n--\n\n"
     "Opens collection `name` (or an alias).  When it does not exist and dim (or config) is given, it is\n"
     "created; otherwise NotFoundError."},
    {"create_collection", (PyCFunction)(void (*)(void))Database_create_collection, METH_FASTCALL | METH_KEYWORDS,
     "create_collection($self, name, dim=None, metric='cosine', m=None, ef_construction=None, config=None)\n--\n\n"
     "Creates a collection.  config is Qdrant's CreateCollection body as a dict; dim, metric, m and\n"
     "ef_construction fill its 'vectors' and 'hnsw_config' parts.  AlreadyExistsError if it exists."},
    {"drop_collection", (PyCFunction)Database_drop_collection, METH_O,
     "drop_collection($self, name)\n--\n\nDeletes a collection and its files."},
    {"list_collections", (PyCFunction)Database_list_collections, METH_NOARGS,
     "list_collections($self)\n--\n\nNames of the collections."},
    {"create_alias", (PyCFunction)Database_create_alias, METH_VARARGS,
     "create_alias($self, alias, collection)\n--\n\nCreates an alias of a collection."},
    {"delete_alias", (PyCFunction)Database_delete_alias, METH_VARARGS, "delete_alias($self, alias)\n--\n\nDeletes an alias."},
    {"rename_alias", (PyCFunction)Database_rename_alias, METH_VARARGS,
     "rename_alias($self, old, new)\n--\n\nRenames an alias."},
    {"list_aliases", (PyCFunction)Database_list_aliases, METH_VARARGS,
     "list_aliases($self, collection=None)\n--\n\n[{'alias_name': ..., 'collection_name': ...}, ...]"},
    {"restore_snapshot", (PyCFunction)(void (*)(void))Database_restore_snapshot, METH_VARARGS | METH_KEYWORDS,
     "restore_snapshot($self, name, path, overwrite=False)\n--\n\nCreates (or replaces) a collection from a snapshot file."},
    {"close", (PyCFunction)Database_close, METH_NOARGS,
     "close($self)\n--\n\nCheckpoints and closes every collection and releases the directory lock.  Idempotent."},
    {"__enter__", (PyCFunction)Database_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Database_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Database_getset[] = {
    {"path", (getter)Database_get_path, NULL, "The data directory.", NULL},
    {"closed", (getter)Database_get_closed, NULL, "True after close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Database_as_sequence = {.sq_contains = (objobjproc)Database_contains};

static PyTypeObject DatabaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nearly.Database",
    .tp_basicsize = sizeof(DatabaseObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Database(path)\n--\n\n"
              "An embedded Nearly: the data directory `path` (created if needed) with its collections, in the\n"
              "format `nearly serve --data-dir` reads.  The directory is locked while open (BusyError for a\n"
              "second process).",
    .tp_new = Database_tpnew,
    .tp_init = (initproc)Database_init,
    .tp_dealloc = (destructor)Database_dealloc,
    .tp_traverse = (traverseproc)Database_traverse,
    .tp_methods = Database_methods,
    .tp_getset = Database_getset,
    .tp_as_sequence = &Database_as_sequence,
    .tp_repr = (reprfunc)Database_repr,
    .tp_weaklistoffset = offsetof(DatabaseObject, weakreflist),
};

/* ---- Collection methods ---- */

/* Selector from ids= / filter= (exactly one). */
typedef struct {
    ny_selector sel;
    ny_point_id *ids;
    PyObject *fjson;
} pysel;

static void pysel_free(pysel *s)
{
    free(s->ids);
    Py_XDECREF(s->fjson);
}

static int pysel_get(PyObject *ids, PyObject *filter, const char *what, pysel *s)
{
    memset(s, 0, sizeof *s);
    int has_ids = ids && ids != Py_None, has_f = filter && filter != Py_None;
    if (has_ids == has_f) {
        PyErr_Format(PyExc_TypeError, "%s: give exactly one of ids= or filter=", what);
        return -1;
    }
    if (has_ids) {
        if (pids_get(ids, what, &s->ids, &s->sel.n_ids) < 0) return -1;
        s->sel.ids = s->ids;
        return 0;
    }
    return filter_arg(filter, &s->fjson, &s->sel.filter_json);
}

/* upsert(ids, vectors, payloads=None, wait=True) */
static PyObject *Collection_upsert(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"ids", "vectors", "payloads", "wait"};
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    if (parse_args("upsert", args, nargs, kwnames, names, 4, 3, 2, v) < 0) return NULL;
    if (!self->c) return raise_closed("Collection");
    int wait = arg_bool(v[3], 1);
    if (wait < 0) return NULL;
    ny_point_id *ids = NULL;
    size_t n = 0;
    fmat m;
    memset(&m, 0, sizeof m);
    PyObject *pl_seq = NULL, **pl_json = NULL, *ret = NULL;
    ny_point *pts = NULL;
    if (pids_get(v[0], "upsert", &ids, &n) < 0) return NULL;
    if (fmat_get(v[1], self->dim, "upsert", &m) < 0) goto out;
    if (m.n != n) {
        PyErr_Format(InvalidArgumentError, "upsert: %zu ids but %zu vectors", n, m.n);
        goto out;
    }
    pl_json = calloc(n + 1, sizeof *pl_json);
    pts = calloc(n + 1, sizeof *pts);
    if (!pl_json || !pts) { PyErr_NoMemory(); goto out; }
    if (v[2] && v[2] != Py_None) {
        if (PyDict_Check(v[2])) {
            if (n != 1) {
                PyErr_SetString(InvalidArgumentError, "upsert: one payload dict given for several points; pass a list");
                goto out;
            }
            pl_seq = PyTuple_Pack(1, v[2]);
        } else {
            pl_seq = PySequence_Fast(v[2], "payloads must be a list of dicts (or None)");
        }
        if (!pl_seq) goto out;
        if ((size_t)PySequence_Fast_GET_SIZE(pl_seq) != n) {
            PyErr_Format(InvalidArgumentError, "upsert: %zu ids but %zd payloads", n, PySequence_Fast_GET_SIZE(pl_seq));
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            PyObject *p = PySequence_Fast_GET_ITEM(pl_seq, (Py_ssize_t)i);
            if (p == Py_None) continue;
            if (!PyDict_Check(p)) {
                PyErr_Format(PyExc_TypeError, "upsert: payload %zu must be a dict or None, not %.100s", i,
                             Py_TYPE(p)->tp_name);
                goto out;
            }
            pl_json[i] = to_json(p);
            if (!pl_json[i]) goto out;
            pts[i].payload_json = PyUnicode_AsUTF8(pl_json[i]);
            if (!pts[i].payload_json) goto out;
        }
    }
    Py_ssize_t bad = first_nonfinite(m.data, m.n, self->dim);
    if (bad >= 0) {
        PyErr_Format(InvalidArgumentError, "upsert: vector %zd contains NaN or infinity", bad);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        pts[i].id = ids[i];
        pts[i].vector = m.data + i * self->dim;
    }
    ny_collection *c = coll_enter(self);
    if (!c) goto out;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = n ? ny_collection_upsert(c, pts, n, wait) : NY_OK;
    Py_END_ALLOW_THREADS
    coll_leave(self);
    if (rc != NY_OK) { raise_rc(rc); goto out; }
    ret = Py_NewRef(Py_None);
out:
    if (pl_json) for (size_t i = 0; i < n; i++) Py_XDECREF(pl_json[i]);
    free(pl_json);
    free(pts);
    Py_XDECREF(pl_seq);
    fmat_release(&m);
    free(ids);
    return ret;
}

/* retrieve(ids, with_payload=True, with_vector=False) */
static PyObject *Collection_retrieve(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const char *const names[] = {"ids", "with_payload", "with_vector"};
    PyObject *v[3] = {NULL, NULL, NULL};
    if (parse_args("retrieve", args, nargs, kwnames, names, 3, 3, 1, v) < 0) return NULL;
    if (!self->c) return raise_closed("Collection");
    int wv = arg_bool(v[2], 0);
    if (wv < 0) return NULL;
    PyObject *pj;
    ny_read_opts ro = {NULL, wv};
    if (payload_sel_arg(v[1], &pj, &ro.with_payload_json) < 0) return NULL;
    ny_point_id *ids;
    size_t n;
    if (pids_get(v[0], "retrieve", &ids, &n) < 0) { Py_XDECREF(pj); return NULL; }
    PyObject *ret = NULL;
    ny_collection *c = coll_enter(self);
    if (c) {
        ny_records rs;
        memset(&rs, 0, sizeof rs);
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ny_collection_retrieve(c, ids, n, &ro, &rs);
        Py_END_ALLOW_THREADS
        coll_leave(self);
        if (rc != NY_OK) raise_rc(rc);
        else {
            ret = records_to_list(&rs, self->dim, 0);
            ny_records_free(&rs);
        }
    }
    free(ids);
    Py_XDECREF(pj);
    return ret;
}

/* delete(ids=None, filter=None, wait=True) -> number deleted */
static PyObject *Collection_delete(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"ids", "filter", "wait"};
    PyObject *v[3] = {NULL, NULL, NULL};
    if (parse_args("delete", args, nargs, kwnames, names, 3, 1, 0, v) < 0) return NULL;
    if (!self->c) return raise_closed("Collection");
    int wait = arg_bool(v[2], 1);
    if (wait < 0) return NULL;
    pysel s;
    if (pysel_get(v[0], v[1], "delete", &s) < 0) return NULL;
    PyObject *ret = NULL;
    ny_collection *c = coll_enter(self);
    if (c) {
        size_t deleted = 0;
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ny_collection_delete(c, &s.sel, wait, &deleted);
        Py_END_ALLOW_THREADS
        coll_leave(self);
        ret = rc != NY_OK ? raise_rc(rc) : PyLong_FromSize_t(deleted);
    }
    pysel_free(&s);
    return ret;
}

/* Payload operations: op 0 set, 1 overwrite, 2 delete keys, 3 clear. */
static PyObject *payload_op(CollectionObject *self, int op, PyObject *payload, PyObject *ids, PyObject *filter,
                            PyObject *key, PyObject *waito, const char *what)
{
    if (!self->c) return raise_closed("Collection");
    int wait = arg_bool(waito, 1);
    if (wait < 0) return NULL;
    pysel s;
    if (pysel_get(ids, filter, what, &s) < 0) return NULL;
    PyObject *pj = NULL, *keyseq = NULL, *ret = NULL;
    const char *pjs = NULL, *keys = NULL;
    const char **klist = NULL;
    size_t nk = 0;
    if (op == 0 || op == 1) {
        if (!PyDict_Check(payload)) {
            PyErr_Format(PyExc_TypeError, "%s: payload must be a dict, not %.100s", what, Py_TYPE(payload)->tp_name);
            goto out;
        }
        pj = to_json(payload);
        if (!pj || !(pjs = PyUnicode_AsUTF8(pj))) goto out;
        if (key && key != Py_None) {
            if (!PyUnicode_Check(key)) { PyErr_SetString(PyExc_TypeError, "key must be a str"); goto out; }
            if (!(keys = PyUnicode_AsUTF8(key))) goto out;
        }
    } else if (op == 2) {
        if (PyUnicode_Check(payload)) keyseq = PyTuple_Pack(1, payload);
        else keyseq = PySequence_Fast(payload, "keys must be a list of str");
        if (!keyseq) goto out;
        nk = (size_t)PySequence_Fast_GET_SIZE(keyseq);
        klist = calloc(nk + 1, sizeof *klist);
        if (!klist) { PyErr_NoMemory(); goto out; }
        for (size_t i = 0; i < nk; i++) {
            PyObject *k = PySequence_Fast_GET_ITEM(keyseq, (Py_ssize_t)i);
            if (!PyUnicode_Check(k)) { PyErr_SetString(PyExc_TypeError, "keys must be str"); goto out; }
            if (!(klist[i] = PyUnicode_AsUTF8(k))) goto out;
        }
    }
    ny_collection *c = coll_enter(self);
    if (!c) goto out;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    switch (op) {
    case 0: rc = ny_collection_set_payload(c, &s.sel, pjs, keys, wait); break;
    case 1: rc = ny_collection_overwrite_payload(c, &s.sel, pjs, wait); break;
    case 2: rc = ny_collection_delete_payload_keys(c, &s.sel, klist, nk, wait); break;
    default: rc = ny_collection_clear_payload(c, &s.sel, wait); break;
    }
    Py_END_ALLOW_THREADS
    coll_leave(self);
    ret = rc != NY_OK ? raise_rc(rc) : Py_NewRef(Py_None);
out:
    free(klist);
    Py_XDECREF(keyseq);
    Py_XDECREF(pj);
    pysel_free(&s);
    return ret;
}

static PyObject *Collection_set_payload(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                        PyObject *kwnames)
{
    static const char *const names[] = {"payload", "ids", "filter", "key", "wait"};
    PyObject *v[5] = {NULL, NULL, NULL, NULL, NULL};
    if (parse_args("set_payload", args, nargs, kwnames, names, 5, 2, 1, v) < 0) return NULL;
    return payload_op(self, 0, v[0], v[1], v[2], v[3], v[4], "set_payload");
}

static PyObject *Collection_overwrite_payload(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                              PyObject *kwnames)
{
    static const char *const names[] = {"payload", "ids", "filter", "wait"};
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    if (parse_args("overwrite_payload", args, nargs, kwnames, names, 4, 2, 1, v) < 0) return NULL;
    return payload_op(self, 1, v[0], v[1], v[2], NULL, v[3], "overwrite_payload");
}

static PyObject *Collection_delete_payload(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                           PyObject *kwnames)
{
    static const char *const names[] = {"keys", "ids", "filter", "wait"};
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    if (parse_args("delete_payload", args, nargs, kwnames, names, 4, 2, 1, v) < 0) return NULL;
    return payload_op(self, 2, v[0], v[1], v[2], NULL, v[3], "delete_payload");
}

static PyObject *Collection_clear_payload(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                          PyObject *kwnames)
{
    static const char *const names[] = {"ids", "filter", "wait"};
    PyObject *v[3] = {NULL, NULL, NULL};
    if (parse_args("clear_payload", args, nargs, kwnames, names, 3, 1, 0, v) < 0) return NULL;
    return payload_op(self, 3, NULL, v[0], v[1], NULL, v[2], "clear_payload");
}

/* search(query, limit=10, filter=None, ef=None, exact=False, offset=0, score_threshold=None,
 *        with_payload=True, with_vector=False, quantization=None)
 * quantization: Qdrant's params.quantization as a dict {"ignore": bool,
 * "rescore": bool, "oversampling": float >= 1}. */
static PyObject *Collection_search(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"query", "limit", "filter", "ef", "exact", "offset", "score_threshold",
                                        "with_payload", "with_vector", "quantization"};
    PyObject *v[10] = {NULL};
    if (parse_args("search", args, nargs, kwnames, names, 10, 3, 1, v) < 0) return NULL;
    if (!self->c) return raise_closed("Collection");
    ny_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.quant_rescore = -1;
    size_t limit, ef, offset;
    int exact, wv;
    if (arg_size(v[1], "limit", 10, 1, &limit) < 0 || arg_size(v[3], "ef", 0, 1, &ef) < 0 ||
        arg_size(v[5], "offset", 0, 0, &offset) < 0 || (exact = arg_bool(v[4], 0)) < 0 ||
        (wv = arg_bool(v[8], 0)) < 0)
        return NULL;
    if (v[6] && v[6] != Py_None) {
        double t = PyFloat_AsDouble(v[6]);
        if (t == -1.0 && PyErr_Occurred()) return NULL;
        if (t != t) { PyErr_SetString(InvalidArgumentError, "score_threshold is NaN"); return NULL; }
        sp.has_score_threshold = 1;
        sp.score_threshold = (float)t;
    }
    if (quant_params(v[9], &sp.quant_ignore, &sp.quant_rescore, &sp.quant_oversampling) < 0) return NULL;
    sp.limit = limit;
    sp.offset = offset;
    sp.hnsw_ef = ef;
    sp.exact = exact;
    sp.read.with_vector = wv;
    PyObject *fj = NULL, *pj = NULL, *ret = NULL;
    ny_records *rs = NULL;
    size_t nq = 0;
    fmat q;
    memset(&q, 0, sizeof q);
    if (filter_arg(v[2], &fj, &sp.filter_json) < 0) return NULL;
    if (payload_sel_arg(v[7], &pj, &sp.read.with_payload_json) < 0) goto out;
    if (fmat_get(v[0], self->dim, "search", &q) < 0) goto out;
    Py_ssize_t bad = first_nonfinite(q.data, q.n, self->dim);
    if (bad >= 0) {
        PyErr_Format(InvalidArgumentError, "search: query %zd contains NaN or infinity", bad);
        goto out;
    }
    nq = q.n;
    rs = calloc(nq + 1, sizeof *rs);
    if (!rs) { PyErr_NoMemory(); goto out; }
    ny_collection *c = coll_enter(self);
    if (!c) goto out;
    int rc = NY_OK;
    size_t dim = self->dim;
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < nq; i++) {
        ny_search_params p = sp;
        p.vector = q.data + i * dim;
        rc = ny_collection_search(c, &p, &rs[i]);
        if (rc != NY_OK) break;
    }
    Py_END_ALLOW_THREADS
    coll_leave(self);
    if (rc != NY_OK) { raise_rc(rc); goto out; }
    if (q.single) ret = records_to_list(&rs[0], dim, 1);
    else {
        ret = PyList_New((Py_ssize_t)nq);
        for (size_t i = 0; ret && i < nq; i++) {
            PyObject *l = records_to_list(&rs[i], dim, 1);
            if (!l) { Py_CLEAR(ret); break; }
            PyList_SET_ITEM(ret, (Py_ssize_t)i, l);
        }
    }
out:
    if (rs) for (size_t i = 0; i < nq; i++) ny_records_free(&rs[i]);
    free(rs);
    fmat_release(&q);
    Py_XDECREF(fj);
    Py_XDECREF(pj);
    return ret;
}

/* scroll(limit=10, offset=None, filter=None, with_payload=True, with_vector=False) -> (records, next) */
static PyObject *Collection_scroll(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                   PyObject *kwnames)
{
    static const char *const names[] = {"limit", "offset", "filter", "with_payload", "with_vector"};
    PyObject *v[5] = {NULL};
    if (parse_args("scroll", args, nargs, kwnames, names, 5, 3, 0, v) < 0) return NULL;
    if (!self->c) return raise_closed("Collection");
    size_t limit;
    int wv;
    if (arg_size(v[0], "limit", 10, 1, &limit) < 0 || (wv = arg_bool(v[4], 0)) < 0) return NULL;
    ny_point_id off, *offp = NULL;
    if (v[1] && v[1] != Py_None) {
        if (pid_from_py(v[1], &off, "scroll") < 0) return NULL;
        offp = &off;
    }
    PyObject *fj = NULL, *pj = NULL, *ret = NULL;
    const char *fs = NULL;
    ny_read_opts ro = {NULL, wv};
    if (filter_arg(v[2], &fj, &fs) < 0) return NULL;
    if (payload_sel_arg(v[3], &pj, &ro.with_payload_json) < 0) goto out;
    ny_collection *c = coll_enter(self);
    if (!c) goto out;
    ny_records rs;
    memset(&rs, 0, sizeof rs);
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_collection_scroll(c, offp, limit, fs, &ro, &rs);
    Py_END_ALLOW_THREADS
    coll_leave(self);
    if (rc != NY_OK) { raise_rc(rc); goto out; }
    PyObject *l = records_to_list(&rs, self->dim, 0);
    PyObject *nx = l ? (rs.has_next ? pid_to_py(&rs.next) : Py_NewRef(Py_None)) : NULL;
    ny_records_free(&rs);
    if (l && nx) ret = PyTuple_Pack(2, l, nx);
    Py_XDECREF(l);
    Py_XDECREF(nx);
out:
    Py_XDECREF(fj);
    Py_XDECREF(pj);
    return ret;
}

static PyObject *Collection_count(CollectionObject *self, PyObject *const *args, Py_ssize_t nargs,
                                  PyObject *kwnames)
{
    static const char *const names[] = {"filter"};
    PyObject *v[1] = {NULL};
    if (parse_args("count", args, nargs, kwnames, names, 1, 1, 0, v) < 0) return NULL;
    if (!self->c) return raise_closed("Collection");
    PyObject *fj;
    const char *fs;
    if (filter_arg(v[0], &fj, &fs) < 0) return NULL;
    PyObject *ret = NULL;
    ny_collection *c = coll_enter(self);
    if (c) {
        size_t n = 0;
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = ny_collection_count(c, fs, &n);
        Py_END_ALLOW_THREADS
        coll_leave(self);
        ret = rc != NY_OK ? raise_rc(rc) : PyLong_FromSize_t(n);
    }
    Py_XDECREF(fj);
    return ret;
}

static PyObject *Collection_info(CollectionObject *self, PyObject *unused)
{
    ny_collection *c = coll_enter(self);
    if (!c) return NULL;
    char *js = NULL;
    int rc = ny_collection_info_json(c, &js);
    coll_leave(self);
    return json_result(rc, js);
}

static PyObject *Collection_update_config(CollectionObject *self, PyObject *patch)
{
    if (!PyDict_Check(patch)) { PyErr_SetString(PyExc_TypeError, "update_config() takes a dict"); return NULL; }
    PyObject *js = to_json(patch);
    const char *s = js ? PyUnicode_AsUTF8(js) : NULL;
    if (!s) { Py_XDECREF(js); return NULL; }
    ny_collection *c = coll_enter(self);
    if (!c) { Py_DECREF(js); return NULL; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_collection_update_config(c, s);
    Py_END_ALLOW_THREADS
    coll_leave(self);
    Py_DECREF(js);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Collection_create_payload_index(CollectionObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"field", "schema", "wait", NULL};
    const char *field;
    PyObject *schema = NULL;
    int wait = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|Op:create_payload_index", kwlist, &field, &schema, &wait))
        return NULL;
    PyObject *sobj = schema ? Py_NewRef(schema) : PyUnicode_FromString("keyword");
    if (!sobj) return NULL;
    PyObject *js = to_json(sobj);
    Py_DECREF(sobj);
    const char *s = js ? PyUnicode_AsUTF8(js) : NULL;
    if (!s) { Py_XDECREF(js); return NULL; }
    ny_collection *c = coll_enter(self);
    if (!c) { Py_DECREF(js); return NULL; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_collection_create_payload_index(c, field, s, wait);
    Py_END_ALLOW_THREADS
    coll_leave(self);
    Py_DECREF(js);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Collection_delete_payload_index(CollectionObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"field", "wait", NULL};
    const char *field;
    int wait = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|p:delete_payload_index", kwlist, &field, &wait)) return NULL;
    ny_collection *c = coll_enter(self);
    if (!c) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_collection_delete_payload_index(c, field, wait);
    Py_END_ALLOW_THREADS
    coll_leave(self);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Collection_checkpoint(CollectionObject *self, PyObject *unused)
{
    ny_collection *c = coll_enter(self);
    if (!c) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = ny_collection_checkpoint(c);
    Py_END_ALLOW_THREADS
    coll_leave(self);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Collection_snapshot(CollectionObject *self, PyObject *path)
{
    PyObject *b;
    if (fs_path(path, &b) < 0) return NULL;
    ny_collection *c = coll_enter(self);
    if (!c) { Py_DECREF(b); return NULL; }
    int rc;
    const char *p = PyBytes_AS_STRING(b);
    Py_BEGIN_ALLOW_THREADS
    rc = ny_collection_snapshot(c, p);
    Py_END_ALLOW_THREADS
    coll_leave(self);
    Py_DECREF(b);
    if (rc != NY_OK) return raise_rc(rc);
    Py_RETURN_NONE;
}

static PyObject *Collection_close(CollectionObject *self, PyObject *unused)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Collection.close(): the collection is in use by another thread");
        return NULL;
    }
    coll_drop_handle(self);
    Py_RETURN_NONE;
}

static PyObject *Collection_enter(CollectionObject *self, PyObject *unused)
{
    if (!self->c) return raise_closed("Collection");
    return Py_NewRef(self);
}

static PyObject *Collection_exit(CollectionObject *self, PyObject *args)
{
    PyObject *r = Collection_close(self, NULL);
    if (!r) return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static Py_ssize_t Collection_len(CollectionObject *self)
{
    ny_collection *c = coll_enter(self);
    if (!c) return -1;
    size_t n = 0;
    int rc = ny_collection_count(c, NULL, &n);
    coll_leave(self);
    if (rc != NY_OK) { raise_rc(rc); return -1; }
    return (Py_ssize_t)n;
}

static PyObject *Collection_get_name(CollectionObject *self, void *c) { return Py_NewRef(self->name); }
static PyObject *Collection_get_dim(CollectionObject *self, void *c) { return PyLong_FromSize_t(self->dim); }
static PyObject *Collection_get_metric(CollectionObject *self, void *c)
{
    return PyUnicode_FromString(ny_metric_name(self->metric));
}
static PyObject *Collection_get_closed(CollectionObject *self, void *c)
{
    return PyBool_FromLong(!self->c || !self->dbo || !self->dbo->db);
}

static PyObject *Collection_repr(CollectionObject *self)
{
    return PyUnicode_FromFormat("<nearly.Collection %R dim=%zu metric='%s'%s>", self->name, self->dim,
                                ny_metric_name(self->metric), self->c ? "" : " (closed)");
}

#define FASTKW(fn) (PyCFunction)(void (*)(void))(fn), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef Collection_methods[] = {
    {"upsert", FASTKW(Collection_upsert),
     "upsert($self, ids, vectors, payloads=None, wait=True)\n--\n\n"
     "Inserts or replaces points.  ids: ints in [0, 2^64) or UUIDs (str or uuid.UUID); vectors: (n, dim)\n"
     "(any buffer or sequence, see Index.add); payloads: a list of dicts (or None entries).  The batch is\n"
     "validated first: on error nothing is applied.  wait=True returns once the change is on disk."},
    {"retrieve", FASTKW(Collection_retrieve),
     "retrieve($self, ids, with_payload=True, with_vector=False)\n--\n\nRecords of the ids that exist, in the order asked."},
    {"delete", FASTKW(Collection_delete),
     "delete($self, ids=None, filter=None, wait=True)\n--\n\nDeletes points by ids or by a Qdrant Filter dict; returns the count."},
    {"search", FASTKW(Collection_search),
     "search($self, query, limit=10, filter=None, ef=None, exact=False, offset=0, score_threshold=None, "
     "with_payload=True, with_vector=False)\n--\n\n"
     "Nearest points to query (a vector), best first, as Records with Qdrant scores.  filter is a Qdrant\n"
     "Filter dict, e.g. {'must': [{'key': 'color', 'match': {'value': 'red'}}]}.  A 2-D query array\n"
     "returns one list per row."},
    {"scroll", FASTKW(Collection_scroll),
     "scroll($self, limit=10, offset=None, filter=None, with_payload=True, with_vector=False)\n--\n\n"
     "Points in id order from offset: (records, next_offset), next_offset None at the end."},
    {"count", FASTKW(Collection_count), "count($self, filter=None)\n--\n\nNumber of points (matching filter)."},
    {"set_payload", FASTKW(Collection_set_payload),
     "set_payload($self, payload, ids=None, filter=None, key=None, wait=True)\n--\n\nMerges payload's keys into the selected points."},
    {"overwrite_payload", FASTKW(Collection_overwrite_payload),
     "overwrite_payload($self, payload, ids=None, filter=None, wait=True)\n--\n\nReplaces the selected points' payloads."},
    {"delete_payload", FASTKW(Collection_delete_payload),
     "delete_payload($self, keys, ids=None, filter=None, wait=True)\n--\n\nRemoves keys from the selected points' payloads."},
    {"clear_payload", FASTKW(Collection_clear_payload),
     "clear_payload($self, ids=None, filter=None, wait=True)\n--\n\nEmpties the selected points' payloads."},
    {"create_payload_index", (PyCFunction)(void (*)(void))Collection_create_payload_index, METH_VARARGS | METH_KEYWORDS,
     "create_payload_index($self, field, schema='keyword', wait=True)\n--\n\nIndexes a payload field (Qdrant field_schema)."},
    {"delete_payload_index", (PyCFunction)(void (*)(void))Collection_delete_payload_index, METH_VARARGS | METH_KEYWORDS,
     "delete_payload_index($self, field, wait=True)\n--\n\nDrops a payload index."},
    {"info", (PyCFunction)Collection_info, METH_NOARGS, "info($self)\n--\n\nQdrant's CollectionInfo as a dict."},
    {"update_config", (PyCFunction)Collection_update_config, METH_O,
     "update_config($self, patch)\n--\n\nApplies Qdrant's UpdateCollection body (a dict)."},
    {"checkpoint", (PyCFunction)Collection_checkpoint, METH_NOARGS,
     "checkpoint($self)\n--\n\nPersists the index and state and truncates the write-ahead log."},
    {"snapshot", (PyCFunction)Collection_snapshot, METH_O,
     "snapshot($self, path)\n--\n\nWrites a consistent, self-checking snapshot file."},
    {"close", (PyCFunction)Collection_close, METH_NOARGS,
     "close($self)\n--\n\nReleases this handle (the collection stays in the database)."},
    {"__enter__", (PyCFunction)Collection_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Collection_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Collection_getset[] = {
    {"name", (getter)Collection_get_name, NULL, "Collection name.", NULL},
    {"dim", (getter)Collection_get_dim, NULL, "Vector dimension.", NULL},
    {"metric", (getter)Collection_get_metric, NULL, "'cosine', 'l2' or 'dot'.", NULL},
    {"closed", (getter)Collection_get_closed, NULL, "True after close() or Database.close().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Collection_as_sequence = {.sq_length = (lenfunc)Collection_len};

static PyTypeObject CollectionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "nearly.Collection",
    .tp_basicsize = sizeof(CollectionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A collection of a Database: points (id, vector, payload dict) with HNSW search and Qdrant filters.",
    .tp_new = Collection_new,
    .tp_dealloc = (destructor)Collection_dealloc,
    .tp_traverse = (traverseproc)Collection_traverse,
    .tp_methods = Collection_methods,
    .tp_getset = Collection_getset,
    .tp_as_sequence = &Collection_as_sequence,
    .tp_repr = (reprfunc)Collection_repr,
    .tp_weaklistoffset = offsetof(CollectionObject, weakreflist),
};

/* ===== Module ============================================================== */

static PyObject *mod_simd(PyObject *m, PyObject *unused) { return PyUnicode_FromString(ny_simd_name(ny_simd_active())); }
static PyObject *mod_cpu_count(PyObject *m, PyObject *unused) { return PyLong_FromLong(ny_cpu_count()); }

static PyMethodDef module_methods[] = {
    {"simd", mod_simd, METH_NOARGS, "simd($module)\n--\n\nThe SIMD level of the distance kernels in use ('scalar', 'avx2', 'avx512')."},
    {"cpu_count", mod_cpu_count, METH_NOARGS, "cpu_count($module)\n--\n\nNumber of online CPUs (the default thread count)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "nearly._nearly",
    "Nearly's engine: Index (in-memory HNSW) and Database (embedded collections).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

static int add_exc(PyObject *m, PyObject **slot, const char *name, PyObject *bases, const char *doc)
{
    char full[64];
    snprintf(full, sizeof full, "nearly.%s", name);
    *slot = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
    Py_XDECREF(bases);
    if (!*slot) return -1;
    return PyModule_AddObjectRef(m, name, *slot);
}

PyMODINIT_FUNC PyInit__nearly(void)
{
    if (PyType_Ready(&IndexType) < 0 || PyType_Ready(&DatabaseType) < 0 || PyType_Ready(&CollectionType) < 0)
        return NULL;
    if (!RecordType.tp_name && PyStructSequence_InitType2(&RecordType, &record_desc) < 0) return NULL;
    str_ensure_ascii = PyUnicode_InternFromString("ensure_ascii");
    str_allow_nan = PyUnicode_InternFromString("allow_nan");
    if (!str_ensure_ascii || !str_allow_nan) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    if (add_exc(m, &Error, "Error", NULL, "Base class of Nearly's errors.") < 0 ||
        add_exc(m, &InvalidArgumentError, "InvalidArgumentError", PyTuple_Pack(2, Error, PyExc_ValueError),
                "An argument is invalid (NY_EINVAL).") < 0 ||
        add_exc(m, &DimensionError, "DimensionError", PyTuple_Pack(1, InvalidArgumentError),
                "A vector has the wrong dimension (NY_EDIM).") < 0 ||
        add_exc(m, &NotFoundError, "NotFoundError", PyTuple_Pack(2, Error, PyExc_LookupError),
                "No such id, collection or file (NY_ENOTFOUND).") < 0 ||
        add_exc(m, &AlreadyExistsError, "AlreadyExistsError", PyTuple_Pack(2, Error, PyExc_ValueError),
                "Already exists (NY_EEXIST).") < 0 ||
        add_exc(m, &StorageError, "StorageError", PyTuple_Pack(2, Error, PyExc_OSError),
                "I/O error (NY_EIO).") < 0 ||
        add_exc(m, &CorruptError, "CorruptError", PyTuple_Pack(1, StorageError),
                "A file failed a checksum or format check (NY_ECORRUPT).") < 0 ||
        add_exc(m, &FullError, "FullError", PyTuple_Pack(1, StorageError),
                "Disk full or capacity exhausted (NY_EFULL).") < 0 ||
        add_exc(m, &BusyError, "BusyError", PyTuple_Pack(1, StorageError),
                "Resource locked by another user or process (NY_EBUSY).") < 0 ||
        add_exc(m, &ClosedError, "ClosedError", PyTuple_Pack(2, Error, PyExc_ValueError),
                "The object is closed (NY_ECLOSED).") < 0 ||
        add_exc(m, &ReadOnlyError, "ReadOnlyError", PyTuple_Pack(1, Error),
                "Write attempted on a read-only object (NY_EREADONLY).") < 0 ||
        add_exc(m, &InternalError, "InternalError", PyTuple_Pack(1, Error),
                "An internal invariant failed (NY_EINTERNAL): a bug, please report it.") < 0 ||
        add_exc(m, &OutOfMemoryError, "OutOfMemoryError", PyTuple_Pack(2, Error, PyExc_MemoryError),
                "Out of memory (NY_ENOMEM).") < 0)
        goto fail;
    if (PyModule_AddObjectRef(m, "Index", (PyObject *)&IndexType) < 0 ||
        PyModule_AddObjectRef(m, "Database", (PyObject *)&DatabaseType) < 0 ||
        PyModule_AddObjectRef(m, "Collection", (PyObject *)&CollectionType) < 0 ||
        PyModule_AddObjectRef(m, "Record", (PyObject *)&RecordType) < 0 ||
        PyModule_AddStringConstant(m, "__version__", NEARLY_VERSION) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
