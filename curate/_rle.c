/* curate._rle: the two per-frame passes of curate.rle compiled (curate.rle's NumPy code is the
 * fallback and the reference: tests/test_rle.py checks that both give the same bytes).
 *
 * column_starts(a, a_bytes, b, b_bytes, height, width) -> (starts, values_a, values_b)
 *
 *   a, b      C-contiguous buffers of height*width pixels of a_bytes / b_bytes bytes each (1..8);
 *             b may be None. A pixel is compared as its bytes: two pixels are equal when all their
 *             bytes are.
 *   returns   the column-major index (col*height + row) of every pixel that starts a run — it
 *             differs, in a or in b, from the pixel before it in column-major order (the pixel
 *             above; in the top row, the bottom pixel of the previous column) — ascending,
 *             pixel 0 included; and the value of a and of b (None without b) at each: bytes of
 *             native int64. A pixel of 1, 2, 4 or 8 bytes is read in native byte order (as the
 *             NumPy element it is; cast it back to that type), of 3 bytes little-endian.
 *
 *   It is curate.rle.column_runs' NumPy pass (neighbour comparison, transpose, flatnonzero) fused
 *   into one sweep over the maps as they lie in memory: rows are compared 32 bytes a step with
 *   SSE2 (every x86-64 target's baseline; 8 bytes a step elsewhere) — on label maps nearly every
 *   step is equal, ~1 % of pixels start a run —, the few differing pixels are collected per row
 *   and then placed in column-major order with a counting sort by column.
 *
 * encode_groups(starts, lengths, group_first, height, width) -> (text, offsets, areas, boxes)
 *
 *   starts, lengths   int64 runs (column-major start, length), grouped by id, each group's runs
 *                     in pixel order; group_first: int64 index of each group's first run.
 *   returns           every group's COCO compressed RLE string back to back (bytes), where group
 *                     g's is text[offsets[g]:offsets[g+1]] (int64, groups + 1), its area (int64)
 *                     and XYWH box (float64, groups x 4), as curate.rle.encode_instances computes
 *                     them with NumPy: counts [gap, run, gap, run, ..., trailing gap if any],
 *                     each from the 4th on minus the count two before, 5 bits a character.
 *
 * encode_run_groups(starts, group, groups, height, width) -> (present, text, offsets, areas, boxes)
 *
 *   starts    int64 column-major starts of runs that cover the frame (ascending, from 0);
 *   group     int64 group of each run, 0..groups-1, or -1 for none.
 *   returns   encode_groups' (text, offsets, areas, boxes) for every group that has a run, those
 *             groups ascending in present (int64): neighbouring runs of one group are joined first
 *             (curate.rle.merge_runs), each group's runs kept in pixel order (a counting sort by
 *             group). The same as curate.rle.encode_instances(merge_runs(runs, group), keep=group >= 0).
 *
 * value_pairs(a, b, starts, pixels) -> (of_run, first, second, pixels_of_pair)
 *
 *   a, b      int64 values of each run (its two maps' values), starts as above, pixels the frame's.
 *   returns   the distinct (a, b) pairs, ascending by a then b (first, second: int64), each pair's
 *             pixels (int64) and each run's pair (of_run: int64 index into them); found with a
 *             small hash table (a frame has a few dozen pairs among thousands of runs).
 *
 * unfilter_png(raw, out, height, row_bytes, bpp, swap16) -> bool
 *
 *   raw       the inflated image data of a non-interlaced PNG: height rows of a filter-type byte
 *             and row_bytes filtered bytes (PNG specification, section 9 "Filtering");
 *   out       a writable C-contiguous buffer of height*row_bytes bytes: the image's bytes, row by
 *             row, as libpng gives them — with swap16 each 2-byte sample in native little-endian
 *             order (PNG stores it big-endian);
 *   bpp       the filters' bytes per complete pixel: 1, 2, 3 or 4 (8/16-bit grey, RGB, RGBA);
 *   returns   False when a row has a filter type beyond 4 (out is then partly written), else True.
 *
 *   Label maps are mostly flat, so most 48-byte blocks of a Sub or Paeth row are zero: a zero Sub
 *   block repeats the pixel on its left, and a zero Paeth block whose left pixel equals the one
 *   above-left copies the row above (the predictor is then "up" for every byte of it). Those are
 *   copies; every other byte takes the filter's definition. Up rows add 16 bytes a step.
 *
 * No vector instructions beyond what the compiler's default target has, so one build runs on
 * every machine of its architecture. column_starts, encode_groups and unfilter_png release the GIL while they
 * work on the buffers; encode_run_groups and value_pairs (a few microseconds) keep it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Set bit first + c of the row's bitset for every pixel c (of n, bytes bytes each) where rows p
 * and q differ. Inlined for each pixel size, so that the division by it is a constant's (it runs
 * for every differing byte). */
#define MARK(c) (bits[(first + (c)) >> 6] |= (uint64_t)1 << ((first + (c)) & 63))
static inline __attribute__((always_inline)) void
mark_differences(const uint8_t *p, const uint8_t *q, Py_ssize_t n, const int bytes, uint64_t *bits, Py_ssize_t first)
{
    Py_ssize_t total = n * bytes, k = 0;
#if defined(__SSE2__) /* every x86-64 compiler target: 32 bytes a step, nearly all equal */
    for (; k + 32 <= total; k += 32) {
        __m128i low = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + k)),
                                     _mm_loadu_si128((const __m128i *)(q + k)));
        __m128i high = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + k + 16)),
                                      _mm_loadu_si128((const __m128i *)(q + k + 16)));
        if (_mm_movemask_epi8(_mm_and_si128(low, high)) == 0xFFFF)
            continue;
        uint32_t differ = ~((uint32_t)_mm_movemask_epi8(low) | ((uint32_t)_mm_movemask_epi8(high) << 16));
        while (differ) {
            MARK((k + __builtin_ctz(differ)) / bytes);
            differ &= differ - 1;
        }
    }
#endif
    for (; k + 8 <= total; k += 8) {
        uint64_t x, y;
        memcpy(&x, p + k, 8);
        memcpy(&y, q + k, 8);
        uint64_t d = x ^ y;
        while (d) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            int i = __builtin_clzll(d) >> 3; /* the word's first byte is its most significant */
            d &= ~((uint64_t)0xff << ((7 - i) * 8));
#else
            int i = __builtin_ctzll(d) >> 3;
            d &= ~((uint64_t)0xff << (i * 8));
#endif
            MARK((k + i) / bytes);
        }
    }
    for (; k < total; k++)
        if (p[k] != q[k])
            MARK(k / bytes);
}

/* mark_differences for a pixel size known only at run time: one inlined copy per size */
static void mark_row(const uint8_t *p, const uint8_t *q, Py_ssize_t n, int bytes, uint64_t *bits, Py_ssize_t first)
{
    switch (bytes) {
    case 1: mark_differences(p, q, n, 1, bits, first); break;
    case 2: mark_differences(p, q, n, 2, bits, first); break;
    case 3: mark_differences(p, q, n, 3, bits, first); break;
    case 4: mark_differences(p, q, n, 4, bits, first); break;
    case 8: mark_differences(p, q, n, 8, bits, first); break;
    default: mark_differences(p, q, n, bytes, bits, first); break;
    }
}

/* A pixel's value: native byte order for 1, 2, 4 and 8 bytes (a NumPy element), little-endian for
 * other sizes (Synscapes' RGB: R + 256 G + 65536 B). */
static inline int64_t pixel_value(const uint8_t *p, int bytes)
{
    switch (bytes) {
    case 1: return p[0];
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    case 8: { int64_t v; memcpy(&v, p, 8); return v; }
    default: {
        uint64_t v = 0;
        for (int i = bytes - 1; i >= 0; i--)
            v = (v << 8) | p[i];
        return (int64_t)v;
    }
    }
}

/* The sweep: the starts (*out) and the values of a and b there (*out_a, *out_b when b), all
 * malloc'ed; returns their number, or -1 when out of memory. */
static Py_ssize_t sweep(const uint8_t *a, int a_bytes, const uint8_t *b, int b_bytes, Py_ssize_t height,
                        Py_ssize_t width, int64_t **out, int64_t **out_a, int64_t **out_b)
{
    Py_ssize_t words = (width + 63) / 64; /* the current row's bitset: bit c = pixel c starts a run */
    uint64_t *bits = calloc((size_t)words, sizeof(uint64_t));
    Py_ssize_t *per_column = calloc((size_t)width, sizeof(Py_ssize_t));
    Py_ssize_t capacity = 1 << 14, count = 0;
    int32_t *row_col = malloc(sizeof(int32_t) * 2 * (size_t)capacity); /* (row, col) pairs, row-major */
    int64_t *starts = NULL, *values_a = NULL, *values_b = NULL;
    if (!bits || !per_column || !row_col)
        goto fail;
    for (Py_ssize_t r = 0; r < height; r++) {
        if (r == 0) { /* pixel (0, c) follows (height-1, c-1); pixel 0 always starts a run */
            const Py_ssize_t last = (height - 1) * width;
            mark_row(a + a_bytes, a + last * a_bytes, width - 1, a_bytes, bits, 1);
            if (b)
                mark_row(b + b_bytes, b + last * b_bytes, width - 1, b_bytes, bits, 1);
            bits[0] |= 1;
        } else {
            mark_row(a + r * width * a_bytes, a + (r - 1) * width * a_bytes, width, a_bytes, bits, 0);
            if (b)
                mark_row(b + r * width * b_bytes, b + (r - 1) * width * b_bytes, width, b_bytes, bits, 0);
        }
        for (Py_ssize_t w = 0; w < words; w++) {
            uint64_t word = bits[w];
            if (!word)
                continue;
            bits[w] = 0;
            while (word) {
                Py_ssize_t col = w * 64 + __builtin_ctzll(word);
                word &= word - 1;
                if (count == capacity) {
                    capacity *= 2;
                    int32_t *grown = realloc(row_col, sizeof(int32_t) * 2 * (size_t)capacity);
                    if (!grown)
                        goto fail;
                    row_col = grown;
                }
                row_col[2 * count] = (int32_t)r;
                row_col[2 * count + 1] = (int32_t)col;
                count++;
                per_column[col]++;
            }
        }
    }
    size_t size = sizeof(int64_t) * (size_t)(count ? count : 1);
    starts = malloc(size);
    values_a = malloc(size);
    values_b = b ? malloc(size) : NULL;
    if (!starts || !values_a || (b && !values_b))
        goto fail;
    Py_ssize_t position = 0; /* counting sort by column; rows stay ascending within a column */
    for (Py_ssize_t c = 0; c < width; c++) {
        Py_ssize_t n = per_column[c];
        per_column[c] = position;
        position += n;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t row = row_col[2 * i], col = row_col[2 * i + 1], at = per_column[col]++;
        Py_ssize_t pixel = row * width + col;
        starts[at] = (int64_t)col * height + row;
        values_a[at] = pixel_value(a + pixel * a_bytes, a_bytes);
        if (b)
            values_b[at] = pixel_value(b + pixel * b_bytes, b_bytes);
    }
    free(bits);
    free(per_column);
    free(row_col);
    *out = starts;
    *out_a = values_a;
    *out_b = values_b;
    return count;
fail:
    free(bits);
    free(per_column);
    free(row_col);
    free(starts);
    free(values_a);
    free(values_b);
    return -1;
}

static int check_map(const char *name, Py_buffer *view, int bytes, Py_ssize_t pixels)
{
    if (bytes < 1 || bytes > 8) {
        PyErr_Format(PyExc_ValueError, "%s: bytes per pixel must be 1..8, got %d", name, bytes);
        return -1;
    }
    if (pixels > PY_SSIZE_T_MAX / bytes) {
        PyErr_Format(PyExc_ValueError, "%s: %zd pixels of %d bytes do not fit in memory", name, pixels, bytes);
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C') || view->len != pixels * bytes) {
        PyErr_Format(PyExc_ValueError, "%s: expected a C-contiguous buffer of %zd bytes, got %zd", name,
                     pixels * bytes, view->len);
        return -1;
    }
    return 0;
}

static PyObject *column_starts(PyObject *self, PyObject *args)
{
    Py_buffer a = {0}, b = {0};
    PyObject *b_object;
    int a_bytes, b_bytes;
    Py_ssize_t height, width;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*iOinn", &a, &a_bytes, &b_object, &b_bytes, &height, &width))
        return NULL;
    int with_b = b_object != Py_None;
    if (with_b && PyObject_GetBuffer(b_object, &b, PyBUF_C_CONTIGUOUS) < 0)
        goto done;
    if (height < 1 || width < 1 || height > INT32_MAX || width > INT32_MAX || height > PY_SSIZE_T_MAX / width) {
        PyErr_Format(PyExc_ValueError, "height and width must be 1..2**31-1, got %zd x %zd", height, width);
        goto done;
    }
    if (check_map("a", &a, a_bytes, height * width) < 0 || (with_b && check_map("b", &b, b_bytes, height * width) < 0))
        goto done;
    int64_t *starts = NULL, *values_a = NULL, *values_b = NULL;
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    count = sweep(a.buf, a_bytes, with_b ? b.buf : NULL, b_bytes, height, width, &starts, &values_a, &values_b);
    Py_END_ALLOW_THREADS
    if (count < 0) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t size = count * (Py_ssize_t)sizeof(int64_t);
    /* bytearrays: the arrays NumPy makes of them are writable, as the NumPy pass's are */
    PyObject *starts_bytes = PyByteArray_FromStringAndSize((const char *)starts, size);
    PyObject *a_bytes_object = PyByteArray_FromStringAndSize((const char *)values_a, size);
    PyObject *b_bytes_object = with_b ? PyByteArray_FromStringAndSize((const char *)values_b, size) : Py_NewRef(Py_None);
    if (starts_bytes && a_bytes_object && b_bytes_object)
        result = PyTuple_Pack(3, starts_bytes, a_bytes_object, b_bytes_object);
    Py_XDECREF(starts_bytes);
    Py_XDECREF(a_bytes_object);
    Py_XDECREF(b_bytes_object);
    free(starts);
    free(values_a);
    free(values_b);
done:
    PyBuffer_Release(&a);
    if (with_b)
        PyBuffer_Release(&b);
    return result;
}


/* --- encode_groups -------------------------------------------------------------------------- */

/* One count in COCO's string form (pycocotools' rleToString): 5 bits a character, 0x20 = more
 * follows, offset by 48; x is already the difference to the count two before where that applies. */
static inline char *put_count(char *out, int64_t x)
{
    int more = 1;
    while (more) {
        int64_t c = x & 0x1f;
        x >>= 5; /* arithmetic shift, as the C encoder's signed long */
        more = (c & 0x10) ? x != -1 : x != 0;
        if (more)
            c |= 0x20;
        *out++ = (char)(c + 48);
    }
    return out;
}

typedef struct {
    char *out;
    int64_t before_last, last; /* the two counts before this one */
    Py_ssize_t index;          /* of this count in its list */
} CountWriter;

static inline void write_count(CountWriter *w, int64_t count)
{
    w->out = put_count(w->out, w->index > 2 ? count - w->before_last : count);
    w->before_last = w->last;
    w->last = count;
    w->index++;
}

/* Returns 0, or -1 when out of memory. */
static int encode(const int64_t *starts, const int64_t *lengths, Py_ssize_t runs, const int64_t *group_first,
                  Py_ssize_t groups, int64_t height, int64_t pixels, char **text, Py_ssize_t *text_length,
                  int64_t *offsets, int64_t *areas, double *boxes)
{
    /* at most 2 counts a run plus a trailing gap per group, 13 characters a 64-bit count */
    char *buffer = malloc((size_t)(2 * runs + groups) * 13 + 1);
    if (!buffer)
        return -1;
    CountWriter w = {buffer, 0, 0, 0};
    for (Py_ssize_t g = 0; g < groups; g++) {
        Py_ssize_t first = (Py_ssize_t)group_first[g], end = g + 1 < groups ? (Py_ssize_t)group_first[g + 1] : runs;
        offsets[g] = w.out - buffer;
        w.before_last = w.last = 0;
        w.index = 0;
        int64_t previous_end = 0, area = 0, row_min = height - 1, row_max = 0;
        for (Py_ssize_t r = first; r < end; r++) {
            int64_t start = starts[r], stop = start + lengths[r];
            write_count(&w, start - previous_end);
            write_count(&w, lengths[r]);
            previous_end = stop;
            area += lengths[r];
            int64_t col_start = start / height, row_start = start % height;
            int64_t col_end = (stop - 1) / height, row_end = (stop - 1) % height;
            if (col_end > col_start) { /* crosses a column: the bottom of one, the top of the next */
                row_start = 0;
                row_end = height - 1;
            }
            if (row_start < row_min)
                row_min = row_start;
            if (row_end > row_max)
                row_max = row_end;
        }
        if (pixels - previous_end > 0)
            write_count(&w, pixels - previous_end);
        int64_t x0 = starts[first] / height, x1 = (starts[end - 1] + lengths[end - 1] - 1) / height;
        areas[g] = area;
        boxes[4 * g] = (double)x0;
        boxes[4 * g + 1] = (double)row_min;
        boxes[4 * g + 2] = (double)(x1 - x0 + 1);
        boxes[4 * g + 3] = (double)(row_max - row_min + 1);
    }
    offsets[groups] = w.out - buffer;
    *text = buffer;
    *text_length = w.out - buffer;
    return 0;
}

/* A C-contiguous buffer of native int64 ("q", or "l" where long has 8 bytes), as NumPy exports it. */
static int int64_buffer(const char *name, PyObject *object, Py_buffer *view, Py_ssize_t *count)
{
    if (PyObject_GetBuffer(object, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *format = view->format ? view->format : "B";
    if (*format == '=' || *format == '@')
        format++;
    if (view->itemsize != 8 || !(strcmp(format, "q") == 0 || (strcmp(format, "l") == 0 && sizeof(long) == 8))) {
        PyErr_Format(PyExc_ValueError, "%s: expected native int64 elements, got format %s", name, view->format);
        return -1;
    }
    *count = view->len / 8;
    return 0;
}

static PyObject *encode_groups(PyObject *self, PyObject *args)
{
    Py_buffer starts = {0}, lengths = {0}, group_first = {0};
    PyObject *starts_object, *lengths_object, *group_first_object;
    Py_ssize_t height, width, runs, runs_too, groups;
    PyObject *result = NULL, *offsets = NULL, *areas = NULL, *boxes = NULL;
    if (!PyArg_ParseTuple(args, "OOOnn", &starts_object, &lengths_object, &group_first_object, &height, &width))
        return NULL;
    if (int64_buffer("starts", starts_object, &starts, &runs) < 0 ||
        int64_buffer("lengths", lengths_object, &lengths, &runs_too) < 0 ||
        int64_buffer("group_first", group_first_object, &group_first, &groups) < 0)
        goto done;
    if (runs != runs_too || height < 1 || width < 1 || height > INT64_MAX / width || (groups == 0) != (runs == 0)) {
        PyErr_SetString(PyExc_ValueError, "starts and lengths differ in length, or no height, width or group");
        goto done;
    }
    const int64_t *first = group_first.buf;
    for (Py_ssize_t g = 0; g < groups; g++) /* the groups must cover the runs in order */
        if (first[g] < 0 || first[g] >= runs || (g ? first[g] <= first[g - 1] : first[g] != 0)) {
            PyErr_SetString(PyExc_ValueError, "group_first must rise from 0 within the runs");
            goto done;
        }
    offsets = PyByteArray_FromStringAndSize(NULL, (groups + 1) * 8);
    areas = PyByteArray_FromStringAndSize(NULL, groups * 8);
    boxes = PyByteArray_FromStringAndSize(NULL, groups * 32);
    if (!offsets || !areas || !boxes)
        goto done;
    char *text = NULL;
    Py_ssize_t text_length = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = encode(starts.buf, lengths.buf, runs, first, groups, height, (int64_t)height * width, &text,
                    &text_length, (int64_t *)PyByteArray_AS_STRING(offsets), (int64_t *)PyByteArray_AS_STRING(areas),
                    (double *)PyByteArray_AS_STRING(boxes));
    Py_END_ALLOW_THREADS
    if (status < 0) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *encoded = PyBytes_FromStringAndSize(text, text_length);
    free(text);
    if (encoded)
        result = Py_BuildValue("(NOOO)", encoded, offsets, areas, boxes);
done:
    Py_XDECREF(offsets);
    Py_XDECREF(areas);
    Py_XDECREF(boxes);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&group_first);
    return result;
}


/* Runs that tile a frame of `pixels`: starts rising from 0, all within it; else a ValueError. */
static int check_run_starts(const int64_t *start, Py_ssize_t runs, int64_t pixels)
{
    for (Py_ssize_t r = 0; r < runs; r++)
        if ((r ? start[r] <= start[r - 1] : start[r] != 0) || start[r] >= pixels) {
            PyErr_SetString(PyExc_ValueError, "starts must rise from 0 within the frame");
            return -1;
        }
    return 0;
}


/* --- encode_run_groups ---------------------------------------------------------------------- */

static PyObject *encode_run_groups(PyObject *self, PyObject *args)
{
    Py_buffer starts = {0}, group = {0};
    PyObject *starts_object, *group_object;
    Py_ssize_t groups, height, width, runs, runs_too;
    PyObject *result = NULL, *present = NULL, *offsets = NULL, *areas = NULL, *boxes = NULL;
    int64_t *merged_start = NULL, *merged_length = NULL, *merged_group = NULL, *sorted_start = NULL;
    int64_t *sorted_length = NULL, *first = NULL, *count = NULL;
    if (!PyArg_ParseTuple(args, "OOnnn", &starts_object, &group_object, &groups, &height, &width))
        return NULL;
    if (int64_buffer("starts", starts_object, &starts, &runs) < 0 ||
        int64_buffer("group", group_object, &group, &runs_too) < 0)
        goto done;
    if (runs != runs_too || height < 1 || width < 1 || height > INT64_MAX / width || groups < 0 ||
        groups > PY_SSIZE_T_MAX / 32) {
        PyErr_SetString(PyExc_ValueError, "starts and group differ in length, or a bad height, width or group count");
        goto done;
    }
    const int64_t *start = starts.buf, *of_run = group.buf, pixels = (int64_t)height * width;
    if (check_run_starts(start, runs, pixels) < 0)
        goto done;
    for (Py_ssize_t r = 0; r < runs; r++)
        if (of_run[r] < -1 || of_run[r] >= groups) {
            PyErr_SetString(PyExc_ValueError, "groups must be -1..groups-1");
            goto done;
        }
    size_t n = (size_t)runs + 1;
    merged_start = malloc(n * 8);
    merged_length = malloc(n * 8);
    merged_group = malloc(n * 8);
    sorted_start = malloc(n * 8);
    sorted_length = malloc(n * 8);
    first = malloc(((size_t)groups + 1) * 8);
    count = calloc((size_t)groups + 1, 8);
    if (!merged_start || !merged_length || !merged_group || !sorted_start || !sorted_length || !first || !count) {
        PyErr_NoMemory();
        goto done;
    }
    /* neighbours of one group joined; runs of no group left out */
    Py_ssize_t kept = 0;
    for (Py_ssize_t r = 0; r < runs; r++) {
        int64_t end = r + 1 < runs ? start[r + 1] : pixels;
        if (of_run[r] < 0)
            continue;
        if (kept && merged_group[kept - 1] == of_run[r] && merged_start[kept - 1] + merged_length[kept - 1] == start[r]) {
            merged_length[kept - 1] += end - start[r];
            continue;
        }
        merged_start[kept] = start[r];
        merged_length[kept] = end - start[r];
        merged_group[kept] = of_run[r];
        count[of_run[r]]++;
        kept++;
    }
    Py_ssize_t present_count = 0, position = 0;
    for (Py_ssize_t g = 0; g < groups; g++) {
        if (count[g])
            present_count++;
        first[g] = position;
        position += count[g];
    }
    present = PyByteArray_FromStringAndSize(NULL, present_count * 8);
    offsets = PyByteArray_FromStringAndSize(NULL, (present_count + 1) * 8);
    areas = PyByteArray_FromStringAndSize(NULL, present_count * 8);
    boxes = PyByteArray_FromStringAndSize(NULL, present_count * 32);
    if (!present || !offsets || !areas || !boxes)
        goto done;
    int64_t *present_groups = (int64_t *)PyByteArray_AS_STRING(present);
    for (Py_ssize_t g = 0, k = 0; g < groups; g++)
        if (count[g])
            present_groups[k++] = g;
    /* counting sort by group, stable: each group's runs stay in pixel order */
    for (Py_ssize_t r = 0; r < kept; r++) {
        int64_t at = first[merged_group[r]]++;
        sorted_start[at] = merged_start[r];
        sorted_length[at] = merged_length[r];
    }
    for (Py_ssize_t k = 0, at = 0; k < present_count; k++) { /* each present group's first run */
        first[k] = at;
        at += count[present_groups[k]];
    }
    char *text = NULL;
    Py_ssize_t text_length = 0;
    if (encode(sorted_start, sorted_length, kept, first, present_count, height, pixels, &text, &text_length,
               (int64_t *)PyByteArray_AS_STRING(offsets), (int64_t *)PyByteArray_AS_STRING(areas),
               (double *)PyByteArray_AS_STRING(boxes)) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *encoded = PyBytes_FromStringAndSize(text, text_length);
    free(text);
    if (encoded)
        result = Py_BuildValue("(ONOOO)", present, encoded, offsets, areas, boxes);
done:
    Py_XDECREF(present);
    Py_XDECREF(offsets);
    Py_XDECREF(areas);
    Py_XDECREF(boxes);
    free(merged_start);
    free(merged_length);
    free(merged_group);
    free(sorted_start);
    free(sorted_length);
    free(first);
    free(count);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&group);
    return result;
}


/* --- value_pairs ---------------------------------------------------------------------------- */

typedef struct {
    int64_t a, b;
} Pair;

static const Pair *sorting_pairs; /* qsort has no context argument in C99 */

static int compare_pairs(const void *x, const void *y)
{
    const Pair *p = &sorting_pairs[*(const int64_t *)x], *q = &sorting_pairs[*(const int64_t *)y];
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    return p->b < q->b ? -1 : p->b > q->b;
}

/* The slot of (a, b) in a table of 2**(64 - shift) slots: multiplicative hashing keeps the high bits,
 * which every input bit reaches. */
static inline size_t pair_slot(int64_t a, int64_t b, int shift)
{
    return (size_t)((((uint64_t)a * 0x9E3779B97F4A7C15ull + (uint64_t)b) * 0xC2B2AE3D27D4EB4Full) >> shift);
}

static PyObject *value_pairs(PyObject *self, PyObject *args)
{
    Py_buffer a = {0}, b = {0}, starts = {0};
    PyObject *a_object, *b_object, *starts_object;
    Py_ssize_t runs, runs_b, runs_s, pixels;
    PyObject *result = NULL, *of_run = NULL, *first = NULL, *second = NULL, *pixels_of = NULL;
    Pair *pairs = NULL;
    int64_t *slots = NULL, *counts = NULL, *order = NULL, *rank = NULL;
    if (!PyArg_ParseTuple(args, "OOOn", &a_object, &b_object, &starts_object, &pixels))
        return NULL;
    if (int64_buffer("a", a_object, &a, &runs) < 0 || int64_buffer("b", b_object, &b, &runs_b) < 0 ||
        int64_buffer("starts", starts_object, &starts, &runs_s) < 0)
        goto done;
    const int64_t *va = a.buf, *vb = b.buf, *start = starts.buf;
    if (runs != runs_b || runs != runs_s) {
        PyErr_SetString(PyExc_ValueError, "a, b and starts differ in length");
        goto done;
    }
    if (check_run_starts(start, runs, pixels) < 0)
        goto done;
    of_run = PyByteArray_FromStringAndSize(NULL, runs * 8);
    if (!of_run)
        goto done;
    int64_t *pair_of_run = (int64_t *)PyByteArray_AS_STRING(of_run);
    size_t capacity = 64, distinct = 0; /* open addressing, at most half full */
    int shift = 64 - 6;                 /* capacity = 2**(64 - shift) */
    slots = malloc(capacity * 8);
    pairs = malloc(capacity / 2 * sizeof(Pair));
    counts = malloc(capacity / 2 * 8);
    if (!slots || !pairs || !counts) {
        PyErr_NoMemory();
        goto done;
    }
    memset(slots, 0xff, capacity * 8);
    int64_t last = -1;
    for (Py_ssize_t r = 0; r < runs; r++) {
        int64_t length = (r + 1 < runs ? start[r + 1] : pixels) - start[r];
        if (last >= 0 && pairs[last].a == va[r] && pairs[last].b == vb[r]) { /* most runs repeat the one before */
            pair_of_run[r] = last;
            counts[last] += length;
            continue;
        }
        size_t at = pair_slot(va[r], vb[r], shift);
        while (slots[at] >= 0 && (pairs[slots[at]].a != va[r] || pairs[slots[at]].b != vb[r]))
            at = (at + 1) & (capacity - 1);
        if (slots[at] < 0) {
            if (distinct + 1 > capacity / 2) { /* grow and rehash */
                size_t bigger = capacity * 2;
                int64_t *new_slots = malloc(bigger * 8);
                Pair *new_pairs = realloc(pairs, bigger / 2 * sizeof(Pair));
                if (new_pairs)
                    pairs = new_pairs;
                int64_t *new_counts = realloc(counts, bigger / 2 * 8);
                if (new_counts)
                    counts = new_counts;
                if (!new_slots || !new_pairs || !new_counts) {
                    free(new_slots);
                    PyErr_NoMemory();
                    goto done;
                }
                memset(new_slots, 0xff, bigger * 8);
                for (size_t k = 0; k < distinct; k++) {
                    size_t to = pair_slot(pairs[k].a, pairs[k].b, shift - 1);
                    while (new_slots[to] >= 0)
                        to = (to + 1) & (bigger - 1);
                    new_slots[to] = (int64_t)k;
                }
                free(slots);
                slots = new_slots;
                capacity = bigger;
                shift--;
                at = pair_slot(va[r], vb[r], shift);
                while (slots[at] >= 0)
                    at = (at + 1) & (capacity - 1);
            }
            slots[at] = (int64_t)distinct;
            pairs[distinct].a = va[r];
            pairs[distinct].b = vb[r];
            counts[distinct] = 0;
            distinct++;
        }
        last = slots[at];
        pair_of_run[r] = last;
        counts[last] += length;
    }
    order = malloc((distinct + 1) * 8);
    rank = malloc((distinct + 1) * 8);
    first = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)distinct * 8);
    second = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)distinct * 8);
    pixels_of = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)distinct * 8);
    if (!order || !rank) {
        PyErr_NoMemory();
        goto done;
    }
    if (!first || !second || !pixels_of)
        goto done;
    for (size_t k = 0; k < distinct; k++)
        order[k] = (int64_t)k;
    sorting_pairs = pairs; /* under the GIL: no other thread sorts at the same time */
    qsort(order, distinct, 8, compare_pairs);
    int64_t *out_a = (int64_t *)PyByteArray_AS_STRING(first), *out_b = (int64_t *)PyByteArray_AS_STRING(second);
    int64_t *out_pixels = (int64_t *)PyByteArray_AS_STRING(pixels_of);
    for (size_t k = 0; k < distinct; k++) {
        rank[order[k]] = (int64_t)k;
        out_a[k] = pairs[order[k]].a;
        out_b[k] = pairs[order[k]].b;
        out_pixels[k] = counts[order[k]];
    }
    for (Py_ssize_t r = 0; r < runs; r++)
        pair_of_run[r] = rank[pair_of_run[r]];
    result = PyTuple_Pack(4, of_run, first, second, pixels_of);
done:
    Py_XDECREF(of_run);
    Py_XDECREF(first);
    Py_XDECREF(second);
    Py_XDECREF(pixels_of);
    free(pairs);
    free(slots);
    free(counts);
    free(order);
    free(rank);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&starts);
    return result;
}


/* --- unfilter_png --------------------------------------------------------------------------- */

/* A block of a filtered row: a multiple of 16 bytes and of every pixel size 1, 2, 3, 4. */
#define BLOCK 48

static inline int zero_block(const uint8_t *p)
{
#if defined(__SSE2__)
    __m128i any = _mm_or_si128(_mm_or_si128(_mm_loadu_si128((const __m128i *)p), _mm_loadu_si128((const __m128i *)(p + 16))),
                               _mm_loadu_si128((const __m128i *)(p + 32)));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) == 0xFFFF;
#else
    uint64_t w[6];
    memcpy(w, p, BLOCK);
    return !(w[0] | w[1] | w[2] | w[3] | w[4] | w[5]);
#endif
}

static inline uint8_t paeth(int a, int b, int c)
{
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    return (uint8_t)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

/* One row: cur = the unfiltered bytes of raw (n bytes, filter type filter) over prev (the row
 * above, zeros for the first). Pixels are bpp bytes; n is a multiple of bpp. */
static inline __attribute__((always_inline)) int
unfilter_row(int filter, const uint8_t *restrict raw, uint8_t *restrict cur, const uint8_t *restrict prev,
             Py_ssize_t n, const int bpp)
{
    Py_ssize_t i = 0;
    uint8_t left[4];
    switch (filter) {
    case 0:
        memcpy(cur, raw, (size_t)n);
        return 1;
    case 1: {
        uint8_t pattern[BLOCK];
        int stale = 1;
        for (int c = 0; c < bpp; c++)
            left[c] = cur[c] = raw[c];
        for (i = bpp; i < n;) {
            if (i + BLOCK <= n && zero_block(raw + i)) {
                if (stale) {
                    for (int k = 0; k < BLOCK; k++)
                        pattern[k] = left[k % bpp];
                    stale = 0;
                }
                memcpy(cur + i, pattern, BLOCK);
                i += BLOCK;
                continue;
            }
            Py_ssize_t end = i + BLOCK < n ? i + BLOCK : n;
            for (; i < end; i += bpp)
                for (int c = 0; c < bpp; c++)
                    cur[i + c] = left[c] = (uint8_t)(raw[i + c] + left[c]);
            stale = 1;
        }
        return 1;
    }
    case 2:
#if defined(__SSE2__)
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(cur + i), _mm_add_epi8(_mm_loadu_si128((const __m128i *)(raw + i)),
                                                                _mm_loadu_si128((const __m128i *)(prev + i))));
#endif
        for (; i < n; i++)
            cur[i] = (uint8_t)(raw[i] + prev[i]);
        return 1;
    case 3:
        for (int c = 0; c < bpp; c++)
            left[c] = cur[c] = (uint8_t)(raw[c] + (prev[c] >> 1));
        for (i = bpp; i < n; i += bpp)
            for (int c = 0; c < bpp; c++)
                cur[i + c] = left[c] = (uint8_t)(raw[i + c] + ((left[c] + prev[i + c]) >> 1));
        return 1;
    case 4:
        for (int c = 0; c < bpp; c++)
            cur[c] = (uint8_t)(raw[c] + prev[c]); /* no left pixel: the predictor is the one above */
        for (i = bpp; i < n;) {
            if (i + BLOCK <= n && zero_block(raw + i) && !memcmp(cur + i - bpp, prev + i - bpp, (size_t)bpp)) {
                memcpy(cur + i, prev + i, BLOCK);
                i += BLOCK;
                continue;
            }
            Py_ssize_t end = i + BLOCK < n ? i + BLOCK : n;
            for (; i < end; i += bpp)
                for (int c = 0; c < bpp; c++)
                    cur[i + c] = (uint8_t)(raw[i + c] + paeth(cur[i + c - bpp], prev[i + c], prev[i + c - bpp]));
        }
        return 1;
    default:
        return 0;
    }
}

/* unfilter_row for a pixel size known only at run time: one inlined copy per size */
static int unfilter_any(int filter, const uint8_t *raw, uint8_t *cur, const uint8_t *prev, Py_ssize_t n, int bpp)
{
    switch (bpp) {
    case 1: return unfilter_row(filter, raw, cur, prev, n, 1);
    case 2: return unfilter_row(filter, raw, cur, prev, n, 2);
    case 3: return unfilter_row(filter, raw, cur, prev, n, 3);
    default: return unfilter_row(filter, raw, cur, prev, n, 4);
    }
}

/* 2-byte samples from PNG's big-endian order to little-endian (n even) */
static void swap_pairs(const uint8_t *src, uint8_t *dst, Py_ssize_t n)
{
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_or_si128(_mm_slli_epi16(v, 8), _mm_srli_epi16(v, 8)));
    }
#endif
    for (; i < n; i += 2) {
        dst[i] = src[i + 1];
        dst[i + 1] = src[i];
    }
}

/* All rows; 1 when done, 0 on a bad filter type, -1 when out of memory. */
static int unfilter_rows(const uint8_t *raw, uint8_t *out, Py_ssize_t height, Py_ssize_t row_bytes, int bpp,
                         int swap16)
{
    /* the row above in PNG's byte order: out's previous row, or (swap16) one of two rows here */
    uint8_t *rows = calloc((size_t)(swap16 ? 3 : 1), (size_t)row_bytes + 1);
    if (!rows)
        return -1;
    const uint8_t *prev = rows; /* zeros: the row above the first */
    int done = 1;
    for (Py_ssize_t r = 0; r < height && done; r++) {
        const uint8_t *filtered = raw + r * (row_bytes + 1);
        uint8_t *cur = swap16 ? rows + (1 + (r & 1)) * (row_bytes + 1) : out + r * row_bytes;
        done = unfilter_any(filtered[0], filtered + 1, cur, prev, row_bytes, bpp);
        if (swap16)
            swap_pairs(cur, out + r * row_bytes, row_bytes);
        prev = cur;
    }
    free(rows);
    return done;
}

static PyObject *unfilter_png(PyObject *self, PyObject *args)
{
    Py_buffer raw = {0}, out = {0};
    Py_ssize_t height, row_bytes;
    int bpp, swap16;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*w*nnip", &raw, &out, &height, &row_bytes, &bpp, &swap16))
        return NULL;
    if (bpp < 1 || bpp > 4) {
        PyErr_Format(PyExc_ValueError, "bpp must be 1, 2, 3 or 4, got %d", bpp);
        goto done;
    }
    if (height < 1 || row_bytes < bpp || row_bytes % bpp || (swap16 && row_bytes % 2) ||
        row_bytes >= PY_SSIZE_T_MAX / 3 || height > PY_SSIZE_T_MAX / (row_bytes + 1)) {
        PyErr_Format(PyExc_ValueError, "bad image size: %zd rows of %zd bytes (%d a pixel)", height, row_bytes, bpp);
        goto done;
    }
    if (!PyBuffer_IsContiguous(&raw, 'C') || raw.len != height * (row_bytes + 1) ||
        !PyBuffer_IsContiguous(&out, 'C') || out.len != height * row_bytes) {
        PyErr_Format(PyExc_ValueError, "expected %zd filtered and %zd output bytes, got %zd and %zd",
                     height * (row_bytes + 1), height * row_bytes, raw.len, out.len);
        goto done;
    }
    int done;
    Py_BEGIN_ALLOW_THREADS
    done = unfilter_rows(raw.buf, out.buf, height, row_bytes, bpp, swap16);
    Py_END_ALLOW_THREADS
    if (done < 0)
        PyErr_NoMemory();
    else
        result = PyBool_FromLong(done);
done:
    PyBuffer_Release(&raw);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"column_starts", column_starts, METH_VARARGS,
     "column_starts(a, a_bytes, b, b_bytes, height, width) -> (starts, values_a, values_b) (see the module source)."},
    {"encode_groups", encode_groups, METH_VARARGS,
     "encode_groups(starts, lengths, group_first, height, width) -> (text, offsets, areas, boxes) (see the module source)."},
    {"encode_run_groups", encode_run_groups, METH_VARARGS,
     "encode_run_groups(starts, group, groups, height, width) -> (present, text, offsets, areas, boxes) (see the module source)."},
    {"value_pairs", value_pairs, METH_VARARGS,
     "value_pairs(a, b, starts, pixels) -> (of_run, first, second, pixels_of_pair) (see the module source)."},
    {"unfilter_png", unfilter_png, METH_VARARGS,
     "unfilter_png(raw, out, height, row_bytes, bpp, swap16) -> bool (see the module source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "curate._rle",
                                    "curate.rle's per-frame passes compiled (see _rle.c).", -1, methods};

/* What curate/rle.py expects (its COMPILED_VERSION): a build of an older _rle.c is not used. */
#define VERSION 5

PyMODINIT_FUNC PyInit__rle(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "VERSION", VERSION) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
