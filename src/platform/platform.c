/*
 * The Linux calls Node's fs lacks: lseek with SEEK_DATA / SEEK_HOLE, extended attributes that
 * never follow symlinks (l*xattr) or work on an open file (f*xattr), sync_file_range to start the
 * writeback of what was written, and glibc's mmap threshold (mallopt).
 *
 * Only Node-API is used, so one build loads in every Node from 20 on. System errors are returned,
 * not thrown, as the negative errno (a number where a Buffer was expected): the TypeScript side
 * names the path and builds the Node-style error. Wrong argument types throw TypeError here.
 * No static buffers: the addon may be loaded by worker threads too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <node_api.h>

/* Most attribute values and name lists fit: they then cost one syscall and no allocation. */
#define STACK_BYTES 4096
/* XATTR_NAME_MAX of <linux/limits.h>, without pulling kernel headers in. */
#define ATTR_NAME_MAX 255
/* What the argument helpers return when they have left a TypeError pending; every other non-zero is -errno. */
#define THROWN INT_MIN

/* An xattr call's subject: an open file, or a path whose last component is not followed. */
typedef struct {
  bool by_fd;
  int fd;
  char path[PATH_MAX];
} subject_t;

static napi_value number(napi_env env, int64_t value) {
  napi_value out = NULL;
  napi_create_int64(env, value, &out);
  return out;
}

static napi_value last_errno(napi_env env) { return number(env, -errno); }

static void throw_type(napi_env env, const char *what) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what); }

/*
 * Copies a string or Buffer argument into out as a C string. Returns 0, too_long when it does not
 * fit in cap bytes with its terminator, or THROWN (wrong type, or a NUL byte, which would silently
 * name another file or attribute).
 */
static int c_string(napi_env env, napi_value value, char *out, size_t cap, int too_long, const char *what) {
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  size_t length = 0;
  if (is_buffer) {
    void *data = NULL;
    napi_get_buffer_info(env, value, &data, &length);
    if (length >= cap) return too_long;
    if (length > 0) memcpy(out, data, length);
    out[length] = '\0';
  } else if (napi_get_value_string_utf8(env, value, NULL, 0, &length) == napi_ok) {
    if (length >= cap) return too_long;
    napi_get_value_string_utf8(env, value, out, cap, &length);
  } else {
    throw_type(env, what);
    return THROWN;
  }
  if (strlen(out) != length) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", what);
    return THROWN;
  }
  return 0;
}

/* 0, -EINVAL for a number that is not a whole one (NaN would silently become 0), or THROWN. */
static int get_integer(napi_env env, napi_value value, int64_t *out, const char *what) {
  double d;
  if (napi_get_value_double(env, value, &d) != napi_ok) {
    throw_type(env, what);
    return THROWN;
  }
  if (!(d >= -9007199254740991.0 && d <= 9007199254740991.0) || d != (double)(int64_t)d) return -EINVAL;
  *out = (int64_t)d;
  return 0;
}

/* 0, -EBADF for a number no descriptor can have (a cast would silently pick another), or THROWN. */
static int get_fd(napi_env env, napi_value value, int *fd) {
  int64_t wide;
  int rc = get_integer(env, value, &wide, "fd must be a number");
  if (rc != 0) return rc == THROWN ? THROWN : -EBADF;
  if (wide < 0 || wide > INT_MAX) return -EBADF;
  *fd = (int)wide;
  return 0;
}

/* Reads the call's first want arguments; false with a TypeError pending when fewer were passed. */
static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    throw_type(env, "missing arguments");
    return false;
  }
  return true;
}

/* 0, -errno (a path too long for the kernel, a bad fd), or THROWN. */
static int get_subject(napi_env env, napi_value value, subject_t *subject) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  subject->by_fd = type == napi_number;
  if (subject->by_fd) return get_fd(env, value, &subject->fd);
  return c_string(env, value, subject->path, sizeof subject->path, -ENAMETOOLONG, "path must be a string or Buffer without NUL bytes");
}

/* 0, -ERANGE for a name longer than the kernel takes (its own answer to one), or THROWN. */
static int get_name(napi_env env, napi_value value, char name[ATTR_NAME_MAX + 1]) {
  return c_string(env, value, name, ATTR_NAME_MAX + 1, -ERANGE, "attribute name must be a string or Buffer without NUL bytes");
}

/* The (subject, name) that getxattr and setxattr begin with: 0, -errno, or THROWN. */
static int get_subject_name(napi_env env, const napi_value *argv, subject_t *subject, char name[ATTR_NAME_MAX + 1]) {
  int rc = get_subject(env, argv[0], subject);
  return rc == 0 ? get_name(env, argv[1], name) : rc;
}

/* One attribute's value (name set) or the list of names (name NULL), into buf of size bytes. */
static ssize_t query(const subject_t *subject, const char *name, void *buf, size_t size) {
  if (name == NULL) return subject->by_fd ? flistxattr(subject->fd, buf, size) : llistxattr(subject->path, buf, size);
  return subject->by_fd ? fgetxattr(subject->fd, name, buf, size) : lgetxattr(subject->path, name, buf, size);
}

static napi_value copy_out(napi_env env, const void *data, size_t length) {
  napi_value out = NULL;
  napi_create_buffer_copy(env, length, data, NULL, &out);
  return out;
}

/* A value or name list of any size: the stack first, then the size the kernel says, again while it grows. */
static napi_value read_sized(napi_env env, const subject_t *subject, const char *name) {
  char stack[STACK_BYTES];
  ssize_t got = query(subject, name, stack, sizeof stack);
  if (got >= 0) return copy_out(env, stack, (size_t)got);
  while (errno == ERANGE) {
    ssize_t need = query(subject, name, NULL, 0);
    if (need < 0) break;
    /* + 1: malloc(0) may return NULL, and an attribute can be empty. */
    char *heap = malloc((size_t)need + 1);
    if (heap == NULL) return number(env, -ENOMEM);
    got = query(subject, name, heap, (size_t)need + 1);
    int saved = errno;
    napi_value out = got >= 0 ? copy_out(env, heap, (size_t)got) : NULL;
    free(heap);
    if (got >= 0) return out;
    errno = saved;
  }
  return last_errno(env);
}

/* getxattr(fd | path, name) with a name, listxattr(fd | path) without: a Buffer (names NUL-terminated), or -errno. */
static napi_value read_call(napi_env env, napi_callback_info info, bool with_name) {
  napi_value argv[2];
  if (!get_args(env, info, with_name ? 2 : 1, argv)) return NULL;
  subject_t subject;
  char name[ATTR_NAME_MAX + 1];
  int rc = with_name ? get_subject_name(env, argv, &subject, name) : get_subject(env, argv[0], &subject);
  if (rc == THROWN) return NULL;
  return rc < 0 ? number(env, rc) : read_sized(env, &subject, with_name ? name : NULL);
}

static napi_value js_getxattr(napi_env env, napi_callback_info info) { return read_call(env, info, true); }

static napi_value js_listxattr(napi_env env, napi_callback_info info) { return read_call(env, info, false); }

/* setxattr(fd | path, name, value): 0, or -errno. Creates or replaces. */
static napi_value js_setxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  subject_t subject;
  char name[ATTR_NAME_MAX + 1];
  int rc = get_subject_name(env, argv, &subject, name);
  if (rc == THROWN) return NULL;
  if (rc < 0) return number(env, rc);
  bool is_buffer = false;
  napi_is_buffer(env, argv[2], &is_buffer);
  if (!is_buffer) {
    throw_type(env, "value must be a Buffer or Uint8Array");
    return NULL;
  }
  void *value = NULL;
  size_t length = 0;
  napi_get_buffer_info(env, argv[2], &value, &length);
  int done = subject.by_fd ? fsetxattr(subject.fd, name, value, length, 0) : lsetxattr(subject.path, name, value, length, 0);
  return done == 0 ? number(env, 0) : last_errno(env);
}

/*
 * The arguments (fd, integer, integer) of lseek and sync_file_range: 0, THROWN, or -errno for a value
 * no call could take (the caller returns it as the result).
 */
static int get_fd_and_two(napi_env env, napi_callback_info info, int *fd, int64_t *first, const char *first_error, int64_t *second, const char *second_error) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return THROWN;
  int rc = get_fd(env, argv[0], fd);
  if (rc == 0) rc = get_integer(env, argv[1], first, first_error);
  if (rc == 0) rc = get_integer(env, argv[2], second, second_error);
  return rc;
}

/* lseek(fd, offset, whence): the new offset, or -errno. */
static napi_value js_lseek(napi_env env, napi_callback_info info) {
  int fd;
  int64_t offset, whence;
  int rc = get_fd_and_two(env, info, &fd, &offset, "offset must be a number", &whence, "whence must be a number");
  if (rc != 0) return rc == THROWN ? NULL : number(env, rc);
  off_t at = lseek(fd, (off_t)offset, (int)whence);
  return at >= 0 ? number(env, at) : last_errno(env);
}

/*
 * sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE): starts writeback of the range's dirty
 * pages (length 0: to the end of the file) and returns without waiting for it (nor for metadata, as
 * fdatasync would); 0, or -errno.
 */
static napi_value js_start_writeback(napi_env env, napi_callback_info info) {
  int fd;
  int64_t offset, length;
  int rc = get_fd_and_two(env, info, &fd, &offset, "offset must be a number", &length, "length must be a number");
  if (rc != 0) return rc == THROWN ? NULL : number(env, rc);
  return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE) == 0 ? number(env, 0) : last_errno(env);
}

/*
 * mallopt(M_MMAP_THRESHOLD, bytes): allocations of at least `bytes` get their own mapping, returned to
 * the kernel when freed. Setting it also stops glibc from raising the threshold after each large free
 * (up to 32 MiB), which otherwise serves later large buffers from the heap, where freed ones stay
 * resident. 1 when set; 0 where the C library is not glibc or refuses the value.
 */
static napi_value js_mmap_threshold(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t bytes;
  int rc = get_integer(env, argv[0], &bytes, "bytes must be a number");
  if (rc == THROWN) return NULL;
  if (rc < 0 || bytes < 0 || bytes > INT_MAX) return number(env, 0);
#ifdef __GLIBC__
  return number(env, mallopt(M_MMAP_THRESHOLD, (int)bytes));
#else
  return number(env, 0);
#endif
}

/* The fields lstat_into writes, in order; doubles hold each exactly (inode and device as two 32-bit halves). */
enum { ST_MODE, ST_NLINK, ST_UID, ST_GID, ST_SIZE, ST_BLOCKS, ST_MTIME_SEC, ST_MTIME_NSEC, ST_CTIME_SEC, ST_CTIME_NSEC, ST_INO_HI, ST_INO_LO, ST_DEV_HI, ST_DEV_LO, ST_FIELDS };

/*
 * stat_into(path or fd, out Float64Array(ST_FIELDS)): lstat of a path (never following a symlink) or
 * fstat of an open file; 0, or -errno. Writing into an array the caller reuses allocates nothing,
 * where fs.lstatSync with bigint times made ~2.7 KB of garbage a file.
 */
static napi_value js_stat_into(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  napi_valuetype kind;
  napi_typeof(env, argv[0], &kind);
  char path[PATH_MAX];
  int fd = -1;
  int rc = kind == napi_number ? get_fd(env, argv[0], &fd) : c_string(env, argv[0], path, sizeof path, -ENAMETOOLONG, "path must be a string or Buffer without NUL bytes");
  if (rc == THROWN) return NULL;
  if (rc < 0) return number(env, rc);
  bool is_typed = false;
  napi_is_typedarray(env, argv[1], &is_typed);
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (is_typed) napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL);
  if (!is_typed || type != napi_float64_array || length < ST_FIELDS) {
    throw_type(env, "out must be a Float64Array of 14 numbers");
    return NULL;
  }
  struct stat st;
  if ((fd >= 0 ? fstat(fd, &st) : lstat(path, &st)) != 0) return last_errno(env);
  double *out = data;
  out[ST_MODE] = st.st_mode;
  out[ST_NLINK] = (double)st.st_nlink;
  out[ST_UID] = st.st_uid;
  out[ST_GID] = st.st_gid;
  out[ST_SIZE] = (double)st.st_size;
  out[ST_BLOCKS] = (double)st.st_blocks;
  out[ST_MTIME_SEC] = (double)st.st_mtim.tv_sec;
  out[ST_MTIME_NSEC] = (double)st.st_mtim.tv_nsec;
  out[ST_CTIME_SEC] = (double)st.st_ctim.tv_sec;
  out[ST_CTIME_NSEC] = (double)st.st_ctim.tv_nsec;
  out[ST_INO_HI] = (double)((uint64_t)st.st_ino >> 32);
  out[ST_INO_LO] = (double)((uint64_t)st.st_ino & 0xffffffffu);
  out[ST_DEV_HI] = (double)((uint64_t)st.st_dev >> 32);
  out[ST_DEV_LO] = (double)((uint64_t)st.st_dev & 0xffffffffu);
  return number(env, 0);
}

/* strerror(errno): the C library's text, as libuv's table that Node uses lacks some (EDQUOT). */
static napi_value js_strerror(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t code;
  if (napi_get_value_int32(env, argv[0], &code) != napi_ok) {
    throw_type(env, "errno must be a number");
    return NULL;
  }
  char buf[256];
  napi_value out;
  napi_create_string_utf8(env, strerror_r(code, buf, sizeof buf), NAPI_AUTO_LENGTH, &out);
  return out;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value value;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &value);
  napi_set_named_property(env, exports, name, value);
}

NAPI_MODULE_INIT() {
  export_function(env, exports, "getxattr", js_getxattr);
  export_function(env, exports, "listxattr", js_listxattr);
  export_function(env, exports, "setxattr", js_setxattr);
  export_function(env, exports, "lseek", js_lseek);
  export_function(env, exports, "statInto", js_stat_into);
  export_function(env, exports, "strerror", js_strerror);
  export_function(env, exports, "startWriteback", js_start_writeback);
  export_function(env, exports, "mmapThreshold", js_mmap_threshold);
  napi_set_named_property(env, exports, "SEEK_DATA", number(env, SEEK_DATA));
  napi_set_named_property(env, exports, "SEEK_HOLE", number(env, SEEK_HOLE));
  return exports;
}
