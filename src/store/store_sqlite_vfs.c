/*
 * store_sqlite_vfs.c: "kopilka", a SQLite VFS that is the unix VFS except
 * for one thing: writes to a WAL file are gathered in memory and handed to
 * the kernel in one pwrite per transaction.
 *
 * Why: SQLite writes each WAL frame with two write calls (24-byte header,
 * then the page), so a group commit of 30 purchases makes ~500 system calls;
 * on this virtual machine that was a third of the writer thread's time.
 *
 * Why it is safe: SQLite writes a transaction's frames in order and the
 * commit frame (the one whose header carries a non-zero database size) last,
 * and only then publishes the commit in the wal-index that readers use. The
 * buffer is written out right after the commit frame, before SQLite returns
 * to publish it, so no reader or checkpointer can see a frame that is not in
 * the file yet. Anything else that could look at the file (a read of a
 * buffered range, sync, truncate, size, close, lock changes) writes the
 * buffer out first. An error writing the buffer fails the write that
 * triggered it, so SQLite fails the commit.
 */
#include "store_sqlite_vfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch_file {
    sqlite3_file base;   /* base.pMethods = &batch_io */
    sqlite3_file *real;  /* the unix VFS's file, allocated right after us */
    bool is_wal;
    bool commit_pending; /* the commit frame's header was seen */
    char *buf;
    size_t len, cap;
    sqlite3_int64 start; /* file offset of buf[0] */
} batch_file;

enum { BUFFER_MAX = 16 * 1024 * 1024, WRITE_CHUNK = 64 * 1024, WAL_FRAME_HEADER = 24 };

static sqlite3_vfs batch_vfs;
static sqlite3_vfs *unix_vfs;

/* Writes the buffer out. The unix VFS writes at most 128 KiB a call (it
 * masks larger sizes), so the buffer goes in chunks of 64 KiB. */
static int flush(batch_file *f)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += WRITE_CHUNK) {
        size_t n = f->len - done < WRITE_CHUNK ? f->len - done : WRITE_CHUNK;
        rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                       f->start + (sqlite3_int64)done);
    }
    f->len = 0;
    return rc;
}

static bool overlaps(const batch_file *f, sqlite3_int64 off, int amt)
{
    return f->len > 0 && off < f->start + (sqlite3_int64)f->len && off + amt > f->start;
}

static int x_close(sqlite3_file *file)
{
    batch_file *f = (batch_file *)file;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int x_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    batch_file *f = (batch_file *)file;
    if (overlaps(f, off, amt)) {
        int rc = flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    return f->real->pMethods->xRead(f->real, out, amt, off);
}

static int x_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    batch_file *f = (batch_file *)file;
    if (!f->is_wal) return f->real->pMethods->xWrite(f->real, data, amt, off);
    int rc = SQLITE_OK;
    sqlite3_int64 end = f->start + (sqlite3_int64)f->len;
    if (f->len > 0 && off >= f->start && off + amt <= end) {
        /* SQLite rewrites a frame of the open transaction in place. */
        memcpy(f->buf + (off - f->start), data, (size_t)amt);
    } else {
        if (f->len > 0 && (off != end || f->len + (size_t)amt > BUFFER_MAX)) {
            if ((rc = flush(f)) != SQLITE_OK) return rc;
        }
        if (f->len + (size_t)amt > f->cap) {
            size_t cap = f->cap ? f->cap : 256 * 1024;
            while (cap < f->len + (size_t)amt) cap *= 2;
            char *b = realloc(f->buf, cap);
            if (b == NULL) {
                if ((rc = flush(f)) != SQLITE_OK) return rc;
                return f->real->pMethods->xWrite(f->real, data, amt, off);
            }
            f->buf = b;
            f->cap = cap;
        }
        if (f->len == 0) f->start = off;
        memcpy(f->buf + f->len, data, (size_t)amt);
        f->len += (size_t)amt;
    }
    if (f->commit_pending) {
        /* The page of the commit frame: the transaction is complete. */
        f->commit_pending = false;
        return flush(f);
    }
    if (amt == WAL_FRAME_HEADER) {
        const unsigned char *h = data;
        if (h[4] | h[5] | h[6] | h[7]) f->commit_pending = true; /* database size: a commit */
    }
    return SQLITE_OK;
}

#define FLUSH_THEN(call)                                                                        \
    batch_file *f = (batch_file *)file;                                                        \
    int rc = flush(f);                                                                         \
    if (rc != SQLITE_OK) return rc;                                                            \
    return call

static int x_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    FLUSH_THEN(f->real->pMethods->xTruncate(f->real, size));
}
static int x_sync(sqlite3_file *file, int flags) { FLUSH_THEN(f->real->pMethods->xSync(f->real, flags)); }
static int x_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    FLUSH_THEN(f->real->pMethods->xFileSize(f->real, size));
}
static int x_lock(sqlite3_file *file, int level) { FLUSH_THEN(f->real->pMethods->xLock(f->real, level)); }
static int x_unlock(sqlite3_file *file, int level)
{
    FLUSH_THEN(f->real->pMethods->xUnlock(f->real, level));
}

#define FORWARD(f) (((batch_file *)(f))->real)
static int x_check_reserved_lock(sqlite3_file *file, int *out)
{
    return FORWARD(file)->pMethods->xCheckReservedLock(FORWARD(file), out);
}
static int x_file_control(sqlite3_file *file, int op, void *arg)
{
    return FORWARD(file)->pMethods->xFileControl(FORWARD(file), op, arg);
}
static int x_sector_size(sqlite3_file *file) { return FORWARD(file)->pMethods->xSectorSize(FORWARD(file)); }
static int x_device_characteristics(sqlite3_file *file)
{
    return FORWARD(file)->pMethods->xDeviceCharacteristics(FORWARD(file));
}
static int x_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    return FORWARD(file)->pMethods->xShmMap(FORWARD(file), page, size, extend, out);
}
static int x_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    return FORWARD(file)->pMethods->xShmLock(FORWARD(file), offset, n, flags);
}
static void x_shm_barrier(sqlite3_file *file) { FORWARD(file)->pMethods->xShmBarrier(FORWARD(file)); }
static int x_shm_unmap(sqlite3_file *file, int delete_flag)
{
    return FORWARD(file)->pMethods->xShmUnmap(FORWARD(file), delete_flag);
}
static int x_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    batch_file *f = (batch_file *)file;
    if (overlaps(f, off, amt) && flush(f) != SQLITE_OK) {
        *out = NULL;
        return SQLITE_OK; /* no mapping: SQLite falls back to xRead */
    }
    return f->real->pMethods->xFetch(f->real, off, amt, out);
}
static int x_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    return FORWARD(file)->pMethods->xUnfetch(FORWARD(file), off, p);
}

static const sqlite3_io_methods batch_io = {
    3,           x_close,       x_read,          x_write,       x_truncate,
    x_sync,      x_file_size,   x_lock,          x_unlock,      x_check_reserved_lock,
    x_file_control, x_sector_size, x_device_characteristics, x_shm_map, x_shm_lock,
    x_shm_barrier, x_shm_unmap,  x_fetch,         x_unfetch,
};

static int x_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    batch_file *f = (batch_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = unix_vfs->xOpen(unix_vfs, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        f->base.pMethods = NULL; /* SQLite will not call xClose */
        return rc;
    }
    f->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    f->base.pMethods = &batch_io;
    return SQLITE_OK;
}

#define VFS_FORWARD(name, ...) unix_vfs->name(unix_vfs, __VA_ARGS__)
static int x_delete(sqlite3_vfs *v, const char *n, int s) { (void)v; return VFS_FORWARD(xDelete, n, s); }
static int x_access(sqlite3_vfs *v, const char *n, int fl, int *o) { (void)v; return VFS_FORWARD(xAccess, n, fl, o); }
static int x_full_pathname(sqlite3_vfs *v, const char *n, int sz, char *o)
{
    (void)v;
    return VFS_FORWARD(xFullPathname, n, sz, o);
}
static void *x_dl_open(sqlite3_vfs *v, const char *n) { (void)v; return VFS_FORWARD(xDlOpen, n); }
static void x_dl_error(sqlite3_vfs *v, int n, char *o) { (void)v; VFS_FORWARD(xDlError, n, o); }
static void (*x_dl_sym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return VFS_FORWARD(xDlSym, h, s); }
static void x_dl_close(sqlite3_vfs *v, void *h) { (void)v; VFS_FORWARD(xDlClose, h); }
static int x_randomness(sqlite3_vfs *v, int n, char *o) { (void)v; return VFS_FORWARD(xRandomness, n, o); }
static int x_sleep(sqlite3_vfs *v, int us) { (void)v; return VFS_FORWARD(xSleep, us); }
static int x_current_time(sqlite3_vfs *v, double *o) { (void)v; return VFS_FORWARD(xCurrentTime, o); }
static int x_get_last_error(sqlite3_vfs *v, int n, char *o) { (void)v; return VFS_FORWARD(xGetLastError, n, o); }
static int x_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *o)
{
    (void)v;
    return VFS_FORWARD(xCurrentTimeInt64, o);
}

static int register_rc = SQLITE_ERROR;
static void register_once(void)
{
    unix_vfs = sqlite3_vfs_find("unix");
    if (unix_vfs == NULL || unix_vfs->iVersion < 2) return;
    batch_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(batch_file) + unix_vfs->szOsFile,
        .mxPathname = unix_vfs->mxPathname,
        .zName = STORE_SQLITE_VFS_NAME,
        .xOpen = x_open,
        .xDelete = x_delete,
        .xAccess = x_access,
        .xFullPathname = x_full_pathname,
        .xDlOpen = x_dl_open,
        .xDlError = x_dl_error,
        .xDlSym = x_dl_sym,
        .xDlClose = x_dl_close,
        .xRandomness = x_randomness,
        .xSleep = x_sleep,
        .xCurrentTime = x_current_time,
        .xGetLastError = x_get_last_error,
        .xCurrentTimeInt64 = x_current_time_int64,
    };
    register_rc = sqlite3_vfs_register(&batch_vfs, 0);
}

const char *store_sqlite_vfs(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_once);
    return register_rc == SQLITE_OK ? STORE_SQLITE_VFS_NAME : NULL;
}
