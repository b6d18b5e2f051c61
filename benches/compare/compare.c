/*
 * Head-to-head benchmark of tzstore against LMDB and RocksDB on a
 * blockchain node's workloads, each engine through its own C API.
 * See README.md in this directory for the workloads and the settings.
 *
 * Usage: compare DIR [N_KEYS [N_BLOCKS [N_READS [N_VALUES]]]]
 *   TZS_COMPARE_GROW=N1,N2,... sets the sizes of workload 7 (0: skip it).
 *   DIR must exist and be empty; every engine works in a subdirectory.
 *   TZS_COMPARE_SVG=PATH also draws the figures as an SVG bar chart.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tzstore.h"

#define KEY_LEN 32
#define VAL_LEN 8
#define BATCH 10000
#define CONTENTS_LEN 2048
#define METADATA_LEN 8192
/* LMDB/RocksDB value of a block: level, predecessor, contents, metadata. */
#define SER_LEN (4 + 32 + CONTENTS_LEN + METADATA_LEN)
#define MAX_PREDS 12
/* Every VERIFY_EVERY-th read is compared byte for byte with the original. */
#define VERIFY_EVERY 64

#define SALT_KEY 0x6b6579736b657973ULL
#define SALT_ABSENT 0x616273656e746b79ULL
#define SALT_BLOCK 0x626c6f636b686173ULL
#define SALT_VALUE 0x76616c75656b6579ULL
/* Workload 5: values of an indexed file (a rollup node's stores). */
#define VALUE_LEN 2048
#define VALUES_PER_COMMIT 1000
/* Workload 6: levels per cemented chunk, and blocks per LMDB/RocksDB
 * commit when they store the same blocks keyed by level. */
#define CHUNK_LEVELS 1000
/* Workload 7: the index grown through up to MAX_GROW sizes, with
 * GROW_LOOKUPS lookups of each kind at each size. */
#define MAX_GROW 8
#define DEFAULT_GROW "1000000,2000000,4000000"
#define GROW_LOOKUPS 200000
#define SALT_GROW 0x67726f776b657973ULL
#define SALT_GROW_ABSENT 0x67726f7761627365ULL

enum { E_LMDB, E_ROCKS, E_TZS, E_TZS_BS, N_ENGINES };
static const char *ENGINE_NAMES[N_ENGINES] = {"LMDB", "RocksDB", "tzstore", "tzstore block store"};

/* One engine's figures; a negative value means "not measured". */
typedef struct {
  double inserts_per_s;
  double settle_s;
  double hits_per_s;
  double misses_per_s;
  double index_bytes;
  double appends_per_s;
  double append_p50_us;
  double append_p99_us;
  double blocks_bytes;
  double reads_per_s;
  /* Block reads without a copy: tzstore's views (tzs_reader), LMDB's
   * mdb_get (always a pointer into its map), RocksDB's pinned get. */
  double view_reads_per_s;
  /* The same on two threads at once, one reader (transaction) each. */
  double view_reads_2t_per_s;
  /* Workload 5: 2 KiB values, durable commits of 1,000, random reads. */
  double value_inserts_per_s;
  double value_reads_per_s;
  double value_view_reads_per_s;
  double values_bytes;
  /* Workload 6: the blocks of (3) by level, once tzstore cemented them. */
  double level_load_s;
  double level_reads_per_s;
  double level_view_reads_per_s;
  double levels_bytes;
  /* Workload 7, per size: inserts/s over the stage that reached it
   * (without, then with the settle), lookups/s, bytes on disk (closed),
   * bytes written to storage per byte of key + value added. */
  double grow_inserts_per_s[MAX_GROW];
  double grow_settled_inserts_per_s[MAX_GROW];
  double grow_hits_per_s[MAX_GROW];
  double grow_misses_per_s[MAX_GROW];
  double grow_bytes[MAX_GROW];
  double grow_write_amp[MAX_GROW];
} result_t;

/* Offset of element `i` of the result_t array field `field`. */
#define GROW_OFF(field, i) (offsetof(result_t, field) + (size_t)(i) * sizeof(double))

static struct {
  long n_keys;
  long n_blocks;
  long n_reads;
  uint8_t *keys;     /* n_keys present keys */
  uint8_t *absent;   /* n_keys absent keys */
  uint32_t *order;   /* n_keys random indexes into keys */
  uint32_t *b_order; /* n_reads random block ids */
  long n_values;
  uint32_t *v_order; /* n_reads random value ids */
  uint32_t *l_order; /* n_reads random block ids, read by level */
  long grow[MAX_GROW]; /* workload 7's sizes, increasing */
  int n_grow;
} W;

/* ---------- generic helpers ---------- */

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "compare: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) die("out of memory (%zu bytes)", n);
  return p;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double secs_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e9; }

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* 32 pseudo-random bytes determined by (i, salt). */
static void make_key(uint8_t *out, uint64_t i, uint64_t salt) {
  uint64_t s = i * 0x2545F4914F6CDD1DULL ^ salt;
  for (int j = 0; j < 4; j++) {
    uint64_t x = splitmix64(&s);
    memcpy(out + 8 * j, &x, 8);
  }
}

static void print_loadavg(const char *when) {
  char buf[128] = "?";
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (!fgets(buf, sizeof buf, f)) strcpy(buf, "?\n");
    fclose(f);
  }
  printf("load (/proc/loadavg) at %s: %s", when, buf);
  fflush(stdout);
}

static double du_total;
static int du_add(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)path; (void)flag; (void)ftw;
  if (flag == FTW_F) du_total += (double)st->st_size;
  return 0;
}

/* Bytes in the files under `dir` (their sizes, not their allocated blocks:
 * RocksDB preallocates its WAL, and sparse files would count too little). */
static double disk_usage(const char *dir) {
  du_total = 0;
  if (nftw(dir, du_add, 16, FTW_PHYS) != 0) die("nftw %s: %s", dir, strerror(errno));
  return du_total;
}

static void subdir(char *out, size_t n, const char *root, const char *name) {
  if ((size_t)snprintf(out, n, "%s/%s", root, name) >= n) die("path too long");
  if (mkdir(out, 0755) != 0) die("mkdir %s: %s", out, strerror(errno));
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorts `lat` and stores p50/p99 in microseconds; returns ops/s over their sum. */
static double latency_stats(uint64_t *lat, long n, double *p50, double *p99) {
  double total = 0;
  for (long i = 0; i < n; i++) total += (double)lat[i];
  qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
  *p50 = (double)lat[n / 2] / 1e3;
  *p99 = (double)lat[(n * 99) / 100] / 1e3;
  return (double)n / (total / 1e9);
}

/* ---------- workload data ---------- */

static void value_of(uint8_t out[VAL_LEN], uint64_t i) { memcpy(out, &i, VAL_LEN); }

static void gen_workload(void) {
  size_t n = (size_t)W.n_keys;
  W.keys = xmalloc(n * KEY_LEN);
  W.absent = xmalloc(n * KEY_LEN);
  W.order = xmalloc(n * sizeof *W.order);
  W.b_order = xmalloc((size_t)W.n_reads * sizeof *W.b_order);
  uint64_t s = 42;
  for (size_t i = 0; i < n; i++) {
    make_key(W.keys + i * KEY_LEN, i, SALT_KEY);
    make_key(W.absent + i * KEY_LEN, i, SALT_ABSENT);
    W.order[i] = (uint32_t)(splitmix64(&s) % n);
  }
  for (long i = 0; i < W.n_reads; i++) W.b_order[i] = (uint32_t)(splitmix64(&s) % (uint64_t)W.n_blocks);
  W.v_order = xmalloc((size_t)W.n_reads * sizeof *W.v_order);
  for (long i = 0; i < W.n_reads; i++) W.v_order[i] = (uint32_t)(splitmix64(&s) % (uint64_t)W.n_values);
  W.l_order = xmalloc((size_t)W.n_reads * sizeof *W.l_order);
  for (long i = 0; i < W.n_reads; i++) W.l_order[i] = (uint32_t)(splitmix64(&s) % (uint64_t)W.n_blocks);
}

static void block_hash(uint8_t out[32], long id) { make_key(out, (uint64_t)id, SALT_BLOCK); }

/* Block `id`: level id + 1, incompressible contents that start with the id,
 * JSON-like (compressible) metadata as a node's receipts. */
static void gen_block(long id, uint8_t *contents, uint8_t *metadata) {
  uint64_t s = (uint64_t)id ^ 0xC0FFEEULL;
  uint64_t id64 = (uint64_t)id;
  memcpy(contents, &id64, 8);
  for (int i = 8; i < CONTENTS_LEN; i += 8) {
    uint64_t x = splitmix64(&s);
    memcpy(contents + i, &x, 8);
  }
  char receipt[160];
  int len = snprintf(receipt, sizeof receipt,
                     "{\"level\":%ld,\"balance_updates\":[{\"kind\":\"contract\",\"change\":\"%ld\"}]};",
                     id + 1, id % 9973);
  for (int at = 0; at < METADATA_LEN; at += len) {
    int n = METADATA_LEN - at < len ? METADATA_LEN - at : len;
    memcpy(metadata + at, receipt, (size_t)n);
  }
}

static void block_pred(uint8_t out[32], long id) { block_hash(out, id > 0 ? id - 1 : -1); }

/* LMDB/RocksDB value: level (LE), predecessor, contents, metadata. */
static void serialize_block(uint8_t *out, long id) {
  int32_t level = (int32_t)(id + 1);
  memcpy(out, &level, 4);
  block_pred(out + 4, id);
  gen_block(id, out + 36, out + 36 + CONTENTS_LEN);
}

/* The cheap check done on every read: sizes, level and the id at the start
 * of the contents; plus a full comparison every VERIFY_EVERY-th read. */
static void verify_serialized(const uint8_t *v, size_t len, long id, long nth, uint8_t *scratch) {
  int32_t level;
  uint64_t got;
  if (len != SER_LEN) die("block %ld: value of %zu bytes, want %d", id, len, SER_LEN);
  memcpy(&level, v, 4);
  memcpy(&got, v + 36, 8);
  if (level != id + 1 || got != (uint64_t)id) die("block %ld: wrong level or contents", id);
  if (nth % VERIFY_EVERY == 0) {
    serialize_block(scratch, id);
    if (memcmp(v, scratch, SER_LEN) != 0) die("block %ld: bytes differ from what was stored", id);
  }
}

/* `want` is block id's hash, when the caller has it at hand (a read by
 * hash), or NULL (a read by level): computed then. */
static void verify_tzs_block(const tzs_block *b, long id, long nth, uint8_t *scratch, const uint8_t *want) {
  uint64_t got;
  uint8_t h[32];
  if (b->contents.len != CONTENTS_LEN || !b->has_metadata || b->metadata.len != METADATA_LEN)
    die("block %ld: wrong sizes (contents %zu, metadata %zu)", id, b->contents.len, b->metadata.len);
  memcpy(&got, b->contents.ptr, 8);
  if (!want) {
    block_hash(h, id);
    want = h;
  }
  if (b->level != id + 1 || got != (uint64_t)id || memcmp(b->hash, want, 32) != 0)
    die("block %ld: wrong level, hash or contents", id);
  if (nth % VERIFY_EVERY == 0) {
    uint8_t pred[32];
    gen_block(id, scratch, scratch + CONTENTS_LEN);
    block_pred(pred, id);
    if (memcmp(b->contents.ptr, scratch, CONTENTS_LEN) != 0 ||
        memcmp(b->metadata.ptr, scratch + CONTENTS_LEN, METADATA_LEN) != 0 ||
        memcmp(b->predecessor, pred, 32) != 0)
      die("block %ld: bytes differ from what was stored", id);
  }
}

static void check_value(const uint8_t *v, size_t len, uint64_t i) {
  uint8_t want[VAL_LEN];
  value_of(want, i);
  if (len != VAL_LEN || memcmp(v, want, VAL_LEN) != 0) die("key %" PRIu64 ": wrong value", i);
}

/* ---------- error checks ---------- */

static void mdb_ok(int rc, const char *what) {
  if (rc != MDB_SUCCESS) die("LMDB %s: %s", what, mdb_strerror(rc));
}

static void rdb_ok(char **err, const char *what) {
  if (*err) die("RocksDB %s: %s", what, *err);
}

static tzs_error *terr;

static void tz_ok(tzs_status st, const char *what) {
  if (st != TZS_OK) {
    const char *msg = terr ? tzs_error_message(terr) : "";
    fprintf(stderr, "compare: tzstore %s: %s %s\n", what, tzs_status_name(st), msg);
    tzs_error_free(terr);
    exit(1);
  }
}

/* ---------- LMDB ---------- */

static MDB_env *lmdb_open(const char *dir, MDB_dbi *dbi) {
  MDB_env *env;
  MDB_txn *txn;
  mdb_ok(mdb_env_create(&env), "env_create");
  mdb_ok(mdb_env_set_mapsize(env, (size_t)8 << 30), "set_mapsize");
  /* Default flags: every commit syncs data and meta page. */
  mdb_ok(mdb_env_open(env, dir, 0, 0644), "env_open");
  mdb_ok(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
  mdb_ok(mdb_dbi_open(txn, NULL, 0, dbi), "dbi_open");
  mdb_ok(mdb_txn_commit(txn), "commit");
  return env;
}

static void lmdb_index(const char *dir, result_t *r) {
  MDB_dbi dbi;
  MDB_env *env = lmdb_open(dir, &dbi);
  MDB_txn *txn;
  uint8_t v[VAL_LEN];

  uint64_t t0 = now_ns();
  for (long b = 0; b < W.n_keys; b += BATCH) {
    mdb_ok(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
    for (long i = b; i < b + BATCH && i < W.n_keys; i++) {
      MDB_val k = {KEY_LEN, W.keys + i * KEY_LEN};
      value_of(v, (uint64_t)i);
      MDB_val d = {VAL_LEN, v};
      mdb_ok(mdb_put(txn, dbi, &k, &d, 0), "put");
    }
    mdb_ok(mdb_txn_commit(txn), "commit");
  }
  r->inserts_per_s = (double)W.n_keys / secs_since(t0);
  r->settle_s = 0;
  MDB_stat st;
  mdb_ok(mdb_env_stat(env, &st), "env_stat");
  if ((long)st.ms_entries != W.n_keys) die("LMDB holds %zu keys, want %ld", st.ms_entries, W.n_keys);

  /* One read transaction, reset and renewed every BATCH lookups. */
  for (int absent = 0; absent < 2; absent++) {
    mdb_ok(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "txn_begin ro");
    t0 = now_ns();
    for (long n = 0; n < W.n_keys; n++) {
      if (n > 0 && n % BATCH == 0) {
        mdb_txn_reset(txn);
        mdb_ok(mdb_txn_renew(txn), "txn_renew");
      }
      uint32_t i = W.order[n];
      MDB_val k = {KEY_LEN, (absent ? W.absent : W.keys) + (size_t)i * KEY_LEN}, d;
      int rc = mdb_get(txn, dbi, &k, &d);
      if (absent) {
        if (rc != MDB_NOTFOUND) die("LMDB: absent key found (rc %d)", rc);
      } else {
        mdb_ok(rc, "get");
        check_value(d.mv_data, d.mv_size, i);
      }
    }
    double rate = (double)W.n_keys / secs_since(t0);
    mdb_txn_abort(txn);
    if (absent) r->misses_per_s = rate;
    else r->hits_per_s = rate;
  }
  mdb_env_close(env);
  r->index_bytes = disk_usage(dir); /* closed: the map file as it remains */
}

/* ---------- RocksDB ---------- */

typedef struct {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_block_based_table_options_t *table;
  rocksdb_cache_t *cache;
  rocksdb_writeoptions_t *wo;
  rocksdb_readoptions_t *ro;
} rocks_t;

static void rocks_open(rocks_t *x, const char *dir) {
  char *err = NULL;
  x->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(x->opts, 1);
  rocksdb_options_increase_parallelism(x->opts, 2);
  x->table = rocksdb_block_based_options_create();
  /* The table options own the filter policy once it is set. */
  rocksdb_block_based_options_set_filter_policy(x->table, rocksdb_filterpolicy_create_bloom_full(10));
  x->cache = rocksdb_cache_create_lru((size_t)64 << 20);
  rocksdb_block_based_options_set_block_cache(x->table, x->cache);
  rocksdb_options_set_block_based_table_factory(x->opts, x->table);
  x->db = rocksdb_open(x->opts, dir, &err);
  rdb_ok(&err, "open");
  x->wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(x->wo, 1);
  x->ro = rocksdb_readoptions_create();
}

static void rocks_close(rocks_t *x) {
  rocksdb_close(x->db);
  rocksdb_writeoptions_destroy(x->wo);
  rocksdb_readoptions_destroy(x->ro);
  rocksdb_block_based_options_destroy(x->table);
  rocksdb_cache_destroy(x->cache);
  rocksdb_options_destroy(x->opts);
}

static void rocks_index(const char *dir, result_t *r) {
  rocks_t x;
  char *err = NULL;
  uint8_t v[VAL_LEN];
  rocks_open(&x, dir);
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();

  uint64_t t0 = now_ns();
  for (long b = 0; b < W.n_keys; b += BATCH) {
    rocksdb_writebatch_clear(wb);
    for (long i = b; i < b + BATCH && i < W.n_keys; i++) {
      value_of(v, (uint64_t)i);
      rocksdb_writebatch_put(wb, (const char *)W.keys + i * KEY_LEN, KEY_LEN, (const char *)v, VAL_LEN);
    }
    rocksdb_write(x.db, x.wo, wb, &err);
    rdb_ok(&err, "write batch");
  }
  r->inserts_per_s = (double)W.n_keys / secs_since(t0);
  rocksdb_writebatch_destroy(wb);

  /* Its best steady state for reads: memtable flushed, fully compacted. */
  t0 = now_ns();
  rocksdb_compact_range(x.db, NULL, 0, NULL, 0);
  r->settle_s = secs_since(t0);

  for (int absent = 0; absent < 2; absent++) {
    t0 = now_ns();
    for (long n = 0; n < W.n_keys; n++) {
      uint32_t i = W.order[n];
      size_t len;
      const char *k = (const char *)(absent ? W.absent : W.keys) + (size_t)i * KEY_LEN;
      char *got = rocksdb_get(x.db, x.ro, k, KEY_LEN, &len, &err);
      rdb_ok(&err, "get");
      if (absent) {
        if (got) die("RocksDB: absent key found");
      } else {
        if (!got) die("RocksDB: key %u missing", i);
        check_value((const uint8_t *)got, len, i);
        rocksdb_free(got);
      }
    }
    double rate = (double)W.n_keys / secs_since(t0);
    if (absent) r->misses_per_s = rate;
    else r->hits_per_s = rate;
  }
  rocks_close(&x);
  r->index_bytes = disk_usage(dir); /* closed: SSTs, WAL, MANIFEST, LOG as they remain */
}

/* ---------- tzstore ---------- */

static void tzs_index_bench(const char *dir, result_t *r) {
  tzs_index *ix;
  uint8_t v[VAL_LEN];
  tz_ok(tzs_index_open(dir, KEY_LEN, VAL_LEN, 0, 0, &ix, &terr), "index_open");

  uint64_t t0 = now_ns();
  for (long b = 0; b < W.n_keys; b += BATCH) {
    for (long i = b; i < b + BATCH && i < W.n_keys; i++) {
      value_of(v, (uint64_t)i);
      tz_ok(tzs_index_add(ix, W.keys + i * KEY_LEN, KEY_LEN, v, VAL_LEN, false, &terr), "index_add");
    }
    tz_ok(tzs_index_flush(ix, &terr), "index_flush");
  }
  r->inserts_per_s = (double)W.n_keys / secs_since(t0);
  t0 = now_ns();
  tz_ok(tzs_index_await_merge(ix, &terr), "index_await_merge");
  r->settle_s = secs_since(t0);
  if ((long)tzs_index_len(ix) != W.n_keys) die("tzstore index holds %" PRIu64 " keys", tzs_index_len(ix));

  for (int absent = 0; absent < 2; absent++) {
    t0 = now_ns();
    for (long n = 0; n < W.n_keys; n++) {
      uint32_t i = W.order[n];
      const uint8_t *k = (absent ? W.absent : W.keys) + (size_t)i * KEY_LEN;
      tzs_status st = tzs_index_find(ix, k, KEY_LEN, v, VAL_LEN, &terr);
      if (absent) {
        if (st == TZS_OK) die("tzstore: absent key found");
        if (st != TZS_NOT_FOUND) tz_ok(st, "index_find (absent key)");
      } else {
        tz_ok(st, "index_find");
        check_value(v, VAL_LEN, i);
      }
    }
    double rate = (double)W.n_keys / secs_since(t0);
    if (absent) r->misses_per_s = rate;
    else r->hits_per_s = rate;
  }
  tzs_index_close(ix);
  r->index_bytes = disk_usage(dir); /* closed */
}

/* A tzs_block input pointing at the caller's buffers. */
static tzs_block block_input(long id, uint8_t *contents, uint8_t *metadata) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  block_hash(b.hash, id);
  block_pred(b.predecessor, id);
  b.level = (int32_t)(id + 1);
  gen_block(id, contents, metadata);
  b.contents.ptr = contents;
  b.contents.len = CONTENTS_LEN;
  b.has_metadata = true;
  b.metadata.ptr = metadata;
  b.metadata.len = METADATA_LEN;
  return b;
}

/* Predecessor list of block `id` in a linear chain: entry k is the
 * 2^k-th ancestor, while it exists. Returns the number of entries. */
static size_t chain_preds(uint8_t *preds, long id) {
  size_t n = 0;
  while (n < MAX_PREDS && (1L << n) <= id) {
    block_hash(preds + 32 * n, id - (1L << n));
    n++;
  }
  return n;
}

/* One workload's reads, in rounds of BATCH keys: every engine's copying
 * pass, then every engine's pass without a copy on the batch mirrored from
 * the end (other keys, so neither pass finds the other's in the CPU
 * caches). The first engine rotates with the round, so that no engine's
 * pass always follows the same one: a pass leaves the caches full of its
 * own engine's lines. (Until 2026-12-05 each engine's view pass ran right
 * after its own copying pass: LMDB's "copying" pass is the same mdb_get,
 * which warmed LMDB's tree for it, while tzstore's, a 10 KiB copy per
 * read, evicted tzstore's tables.) Adds each engine's seconds to
 * read_s[e] and view_s[e]. */
typedef void (*pass_fn)(void *x, int e, long from, long to, uint8_t *scratch, bool view);
static void timed_rounds(void *x, pass_fn pass, const int *engines, int n, uint8_t *scratch, double *read_s,
                         double *view_s) {
  for (long from = 0; from < W.n_reads; from += BATCH) {
    long to = from + BATCH < W.n_reads ? from + BATCH : W.n_reads;
    int first = (int)((from / BATCH) % n);
    for (int view = 0; view <= 1; view++) {
      for (int k = 0; k < n; k++) {
        int e = engines[(first + k) % n];
        uint64_t r0 = now_ns();
        if (view) pass(x, e, W.n_reads - to, W.n_reads - from, scratch, true);
        else pass(x, e, from, to, scratch, false);
        (view ? view_s : read_s)[e] += secs_since(r0);
      }
    }
  }
}

static const int ALL_ENGINES[N_ENGINES] = {E_LMDB, E_ROCKS, E_TZS, E_TZS_BS};

/* ---------- workloads 3 and 4: blocks, all engines interleaved ---------- */

/* The defaults, but ARCHIVE: the merge of workload 6 then keeps every
 * block's metadata, as an archive node's does, so that reads by level
 * return the same data as LMDB's and RocksDB's values. (FULL with offset
 * 1 drops the metadata of all but the last chunk.) No merge runs in (3). */
static tzs_block_store_options block_store_options(void) {
  tzs_block_store_options o = tzs_block_store_options_default();
  o.history_mode = TZS_HISTORY_ARCHIVE;
  /* TZS_COMPARE_ZSTD_LEVEL: the cemented metadata's zstd level (default
   * 3; 0 stores it uncompressed, as LMDB and RocksDB hold it here, so that
   * reads by level lend it from the zip's map instead of decompressing). */
  const char *z = getenv("TZS_COMPARE_ZSTD_LEVEL");
  if (z && *z) o.zstd_level = (int32_t)atoi(z);
  return o;
}

/* The four block stores, open at once so that appends can be interleaved:
 * block i goes to every engine before block i + 1, so a burst of I/O from
 * the machine's other tenants slows every engine alike. */
typedef struct {
  char dir[N_ENGINES][4096];
  MDB_env *env;
  MDB_dbi dbi;
  rocks_t rocks;
  tzs_floating *fl;
  tzs_block_store *bs;
  tzs_reader *reader;
} blocks_t;

static void blocks_open(blocks_t *x, const char *root) {
  static const char *names[N_ENGINES] = {"lmdb-blocks", "rocksdb-blocks", "tzstore-floating", "tzstore-block-store"};
  for (int e = 0; e < N_ENGINES; e++) subdir(x->dir[e], sizeof x->dir[e], root, names[e]);
  x->env = lmdb_open(x->dir[E_LMDB], &x->dbi);
  rocks_open(&x->rocks, x->dir[E_ROCKS]);
  tz_ok(tzs_floating_open(x->dir[E_TZS], TZS_FLOATING_RW, 0, &x->fl, &terr), "floating_open");
  tz_ok(tzs_reader_new(&x->reader, &terr), "reader_new");
  tzs_block_store_options o = block_store_options();
  tz_ok(tzs_block_store_open(x->dir[E_TZS_BS], &o, &x->bs, &terr), "block_store_open");
}

static void blocks_close(blocks_t *x) {
  if ((long)tzs_floating_len(x->fl) != W.n_blocks)
    die("floating store holds %" PRIu64 " blocks", tzs_floating_len(x->fl));
  mdb_env_close(x->env);
  rocks_close(&x->rocks);
  tzs_reader_free(x->reader);
  tzs_floating_close(x->fl);
  tzs_block_store_close(x->bs);
}

/* Stores a block durably in engine `e` (`ser` is its LMDB/RocksDB value); returns the call's duration. */
static uint64_t block_append(blocks_t *x, int e, const uint8_t *ser, const tzs_block *b, const uint8_t *preds,
                             size_t n_preds) {
  char *err = NULL;
  MDB_txn *txn;
  uint64_t t0 = now_ns();
  switch (e) {
  case E_LMDB: {
    MDB_val k = {32, (void *)b->hash}, d = {SER_LEN, (void *)ser};
    mdb_ok(mdb_txn_begin(x->env, NULL, 0, &txn), "txn_begin");
    mdb_ok(mdb_put(txn, x->dbi, &k, &d, 0), "put");
    mdb_ok(mdb_txn_commit(txn), "commit");
    break;
  }
  case E_ROCKS:
    rocksdb_put(x->rocks.db, x->rocks.wo, (const char *)b->hash, 32, (const char *)ser, SER_LEN, &err);
    rdb_ok(&err, "put");
    break;
  case E_TZS:
    tz_ok(tzs_floating_append(x->fl, b, preds, n_preds, true, &terr), "floating_append");
    break;
  default:
    tz_ok(tzs_block_store_store(x->bs, b, &terr), "block_store_store");
  }
  return now_ns() - t0;
}

/* Checks a block read through a tzs_reader, as verify_tzs_block. */
static void verify_tzs_view(const tzs_block_view *v, long id, long nth, uint8_t *scratch, const uint8_t *want) {
  tzs_block b;
  memcpy(b.hash, v->hash, 32);
  memcpy(b.predecessor, v->predecessor, 32);
  b.level = v->level;
  b.contents.ptr = (uint8_t *)v->contents.ptr;
  b.contents.len = v->contents.len;
  b.has_metadata = v->has_metadata;
  b.metadata.ptr = (uint8_t *)v->metadata.ptr;
  b.metadata.len = v->metadata.len;
  verify_tzs_block(&b, id, nth, scratch, want);
}

/* Reads and checks block W.b_order[from..to) from engine `e`; with `view`,
 * without a copy where the engine offers it. */
static void block_reads_with(blocks_t *x, int e, long from, long to, uint8_t *scratch, bool view,
                             tzs_reader *reader) {
  char *err = NULL;
  MDB_txn *txn = NULL;
  uint8_t h[32];
  if (e == E_LMDB) mdb_ok(mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn), "txn_begin ro");
  for (long n = from; n < to; n++) {
    long id = W.b_order[n];
    block_hash(h, id);
    if (e == E_LMDB) {
      MDB_val k = {32, h}, d;
      mdb_ok(mdb_get(txn, x->dbi, &k, &d), "get block");
      verify_serialized(d.mv_data, d.mv_size, id, n, scratch);
    } else if (e == E_ROCKS && view) {
      rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(x->rocks.db, x->rocks.ro, (const char *)h, 32, &err);
      rdb_ok(&err, "get_pinned block");
      if (!ps) die("RocksDB: block %ld missing", id);
      size_t len;
      const char *got = rocksdb_pinnableslice_value(ps, &len);
      verify_serialized((const uint8_t *)got, len, id, n, scratch);
      rocksdb_pinnableslice_destroy(ps);
    } else if (e == E_ROCKS) {
      size_t len;
      char *got = rocksdb_get(x->rocks.db, x->rocks.ro, (const char *)h, 32, &len, &err);
      rdb_ok(&err, "get block");
      if (!got) die("RocksDB: block %ld missing", id);
      verify_serialized((const uint8_t *)got, len, id, n, scratch);
      rocksdb_free(got);
    } else if (view) {
      tzs_block_view v;
      if (e == E_TZS) tz_ok(tzs_floating_read_view(x->fl, reader, h, &v, &terr), "floating_read_view");
      else tz_ok(tzs_block_store_read_view(x->bs, reader, h, 0, true, &v, &terr), "block_store_read_view");
      verify_tzs_view(&v, id, n, scratch, h);
    } else {
      tzs_block out;
      memset(&out, 0, sizeof out);
      if (e == E_TZS) tz_ok(tzs_floating_read_block(x->fl, h, &out, &terr), "floating_read_block");
      else tz_ok(tzs_block_store_read(x->bs, h, 0, true, &out, &terr), "block_store_read");
      verify_tzs_block(&out, id, n, scratch, h);
      tzs_block_free(&out);
    }
  }
  if (txn) mdb_txn_abort(txn);
}

static void block_reads(blocks_t *x, int e, long from, long to, uint8_t *scratch, bool view) {
  block_reads_with(x, e, from, to, scratch, view, x->reader);
}

static void block_pass(void *x, int e, long from, long to, uint8_t *scratch, bool view) {
  block_reads(x, e, from, to, scratch, view);
}

/* One of two threads reading blocks without a copy. */
typedef struct {
  blocks_t *x;
  int e;
  long from, to;
} read_job_t;

static void *read_job(void *arg) {
  read_job_t *j = arg;
  tzs_reader *reader = NULL;
  uint8_t *scratch = xmalloc(SER_LEN);
  tz_ok(tzs_reader_new(&reader, &terr), "reader_new");
  block_reads_with(j->x, j->e, j->from, j->to, scratch, true, reader);
  tzs_reader_free(reader);
  free(scratch);
  return NULL;
}

/* Reads of all W.n_reads blocks without a copy, half on each of two
 * threads; returns reads/s. */
static double two_thread_view_reads(blocks_t *x, int e) {
  pthread_t t[2];
  read_job_t j[2] = {{x, e, 0, W.n_reads / 2}, {x, e, W.n_reads / 2, W.n_reads}};
  uint64_t t0 = now_ns();
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, read_job, &j[i]) != 0) die("pthread_create");
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  return (double)W.n_reads / secs_since(t0);
}

static void blocks_bench(const char *root, result_t *res) {
  blocks_t x;
  uint8_t *ser = xmalloc(SER_LEN), *scratch = xmalloc(SER_LEN), preds[32 * MAX_PREDS];
  uint8_t *contents = xmalloc(CONTENTS_LEN), *metadata = xmalloc(METADATA_LEN);
  uint64_t *lat[N_ENGINES];
  double read_s[N_ENGINES] = {0};
  for (int e = 0; e < N_ENGINES; e++) lat[e] = xmalloc((size_t)W.n_blocks * sizeof *lat[e]);
  sync();
  blocks_open(&x, root);

  fprintf(stderr, "%-20s ...", "blocks: appends");
  uint64_t t0 = now_ns();
  for (long id = 0; id < W.n_blocks; id++) {
    serialize_block(ser, id);
    tzs_block b = block_input(id, contents, metadata);
    size_t n_preds = chain_preds(preds, id);
    /* The engine that goes first rotates, so none always follows another. */
    for (int k = 0; k < N_ENGINES; k++) {
      int e = (int)((id + k) % N_ENGINES);
      lat[e][id] = block_append(&x, e, ser, &b, preds, n_preds);
    }
  }
  fprintf(stderr, " %.1f s\n", secs_since(t0));
  for (int e = 0; e < N_ENGINES; e++) {
    result_t *r = &res[e];
    r->appends_per_s = latency_stats(lat[e], W.n_blocks, &r->append_p50_us, &r->append_p99_us);
  }

  /* Reads in rounds of BATCH per engine, for the same reason. */
  fprintf(stderr, "%-20s ...", "blocks: reads");
  t0 = now_ns();
  double view_s[N_ENGINES] = {0};
  timed_rounds(&x, block_pass, ALL_ENGINES, N_ENGINES, scratch, read_s, view_s);
  fprintf(stderr, " %.1f s\n", secs_since(t0));
  for (int e = 0; e < N_ENGINES; e++) {
    res[e].reads_per_s = (double)W.n_reads / read_s[e];
    res[e].view_reads_per_s = (double)W.n_reads / view_s[e];
  }
  fprintf(stderr, "%-20s ...", "blocks: 2 threads");
  t0 = now_ns();
  for (int e = 0; e < N_ENGINES; e++) res[e].view_reads_2t_per_s = two_thread_view_reads(&x, e);
  fprintf(stderr, " %.1f s\n", secs_since(t0));

  /* Sizes once every engine is closed (the reads wrote nothing): tzstore
   * trims the zeros written ahead of its appends at close, RocksDB keeps
   * its WAL and SSTs as they are, LMDB its map file. */
  blocks_close(&x);
  for (int e = 0; e < N_ENGINES; e++) res[e].blocks_bytes = disk_usage(x.dir[e]);
  for (int e = 0; e < N_ENGINES; e++) free(lat[e]);
  free(ser);
  free(scratch);
  free(contents);
  free(metadata);
}

/* ---------- workload 6: cemented blocks read by level ---------- */

/* LMDB/RocksDB key of a level: 4 bytes big-endian, so that byte order is
 * level order (LMDB's B-tree and RocksDB's SSTs then hold the blocks in
 * chain order, as a node storing them by level would). */
static void level_key(uint8_t out[4], int32_t level) {
  uint32_t l = (uint32_t)level;
  out[0] = (uint8_t)(l >> 24);
  out[1] = (uint8_t)(l >> 16);
  out[2] = (uint8_t)(l >> 8);
  out[3] = (uint8_t)l;
}

/* The same blocks by level: LMDB and RocksDB in stores of their own, the
 * block store of (3) after its merge, and its cemented store opened
 * read-only beside it (the "tzstore" column). */
typedef struct {
  char dir[N_ENGINES][4096];
  MDB_env *env;
  MDB_dbi dbi;
  rocks_t rocks;
  tzs_cemented *c;
  tzs_block_store *bs;
  tzs_reader *reader;
} levels_t;

/* Reads and checks the blocks W.l_order[from..to) by level from engine
 * `e`; with `view`, without a copy where the engine offers it. */
static void level_reads(levels_t *x, int e, long from, long to, uint8_t *scratch, bool view) {
  char *err = NULL;
  MDB_txn *txn = NULL;
  uint8_t k[4];
  if (e == E_LMDB) mdb_ok(mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn), "txn_begin ro");
  for (long n = from; n < to; n++) {
    long id = W.l_order[n];
    int32_t level = (int32_t)(id + 1);
    if (e == E_LMDB) {
      level_key(k, level);
      MDB_val mk = {4, k}, d;
      mdb_ok(mdb_get(txn, x->dbi, &mk, &d), "get level");
      verify_serialized(d.mv_data, d.mv_size, id, n, scratch);
    } else if (e == E_ROCKS && view) {
      level_key(k, level);
      rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(x->rocks.db, x->rocks.ro, (const char *)k, 4, &err);
      rdb_ok(&err, "get_pinned level");
      if (!ps) die("RocksDB: level %d missing", level);
      size_t len;
      const char *got = rocksdb_pinnableslice_value(ps, &len);
      verify_serialized((const uint8_t *)got, len, id, n, scratch);
      rocksdb_pinnableslice_destroy(ps);
    } else if (e == E_ROCKS) {
      level_key(k, level);
      size_t len;
      char *got = rocksdb_get(x->rocks.db, x->rocks.ro, (const char *)k, 4, &len, &err);
      rdb_ok(&err, "get level");
      if (!got) die("RocksDB: level %d missing", level);
      verify_serialized((const uint8_t *)got, len, id, n, scratch);
      rocksdb_free(got);
    } else if (view) {
      tzs_block_view v;
      if (e == E_TZS)
        tz_ok(tzs_cemented_read_view_by_level(x->c, x->reader, level, true, &v, &terr), "cemented_read_view_by_level");
      else
        tz_ok(tzs_block_store_read_by_level_view(x->bs, x->reader, level, true, &v, &terr),
              "block_store_read_by_level_view");
      verify_tzs_view(&v, id, n, scratch, NULL);
    } else {
      tzs_block out;
      memset(&out, 0, sizeof out);
      if (e == E_TZS) tz_ok(tzs_cemented_read_by_level(x->c, level, true, &out, &terr), "cemented_read_by_level");
      else tz_ok(tzs_block_store_read_by_level(x->bs, level, true, &out, &terr), "block_store_read_by_level");
      verify_tzs_block(&out, id, n, scratch, NULL);
      tzs_block_free(&out);
    }
  }
  if (txn) mdb_txn_abort(txn);
}

/* Cements every block of the block store of (3) (closed, in `bs_dir`) in
 * chunks of CHUNK_LEVELS levels, stores the same blocks by level in LMDB
 * and RocksDB, then reads random levels from all of them. */
static void level_pass(void *x, int e, long from, long to, uint8_t *scratch, bool view) {
  level_reads(x, e, from, to, scratch, view);
}

static void levels_bench(const char *root, const char *bs_dir, result_t *res) {
  levels_t x;
  char *err = NULL;
  uint8_t *scratch = xmalloc(SER_LEN);
  uint8_t *sers = xmalloc((size_t)CHUNK_LEVELS * SER_LEN);
  subdir(x.dir[E_LMDB], sizeof x.dir[E_LMDB], root, "lmdb-levels");
  subdir(x.dir[E_ROCKS], sizeof x.dir[E_ROCKS], root, "rocksdb-levels");
  if ((size_t)snprintf(x.dir[E_TZS], sizeof x.dir[E_TZS], "%.4000s/cemented", bs_dir) >= sizeof x.dir[E_TZS] ||
      (size_t)snprintf(x.dir[E_TZS_BS], sizeof x.dir[E_TZS_BS], "%.4000s", bs_dir) >= sizeof x.dir[E_TZS_BS])
    die("path too long");

  /* tzstore: the block store reopened, every block merged into chunks
   * (ends at each multiple of CHUNK_LEVELS and at the head), timed from
   * the call to the end of the background merge. */
  fprintf(stderr, "%-20s ...", "levels: cement/load");
  uint64_t t0 = now_ns();
  sync();
  tzs_block_store_options o = block_store_options();
  tz_ok(tzs_block_store_open(x.dir[E_TZS_BS], &o, &x.bs, &terr), "block_store_open");
  size_t n_ends = 0;
  int32_t *ends = xmalloc((size_t)(W.n_blocks / CHUNK_LEVELS + 1) * sizeof *ends);
  for (long end = CHUNK_LEVELS; end < W.n_blocks; end += CHUNK_LEVELS) ends[n_ends++] = (int32_t)end;
  ends[n_ends++] = (int32_t)W.n_blocks;
  uint8_t head[32];
  block_hash(head, W.n_blocks - 1);
  uint64_t c0 = now_ns();
  tz_ok(tzs_block_store_merge(x.bs, head, ends, n_ends, &terr), "block_store_merge");
  tz_ok(tzs_block_store_await_merge(x.bs, &terr), "block_store_await_merge");
  res[E_TZS_BS].level_load_s = secs_since(c0);
  free(ends);
  tzs_block_store_stats st;
  tz_ok(tzs_block_store_read_stats(x.bs, &st, &terr), "block_store_read_stats");
  if (st.cemented_lowest != 1 || st.cemented_highest != (int32_t)W.n_blocks || (long)st.cemented_blocks != W.n_blocks)
    die("block store cemented levels %d..%d (%" PRIu64 " blocks), want 1..%ld", st.cemented_lowest,
        st.cemented_highest, st.cemented_blocks, W.n_blocks);
  tz_ok(tzs_cemented_open(x.dir[E_TZS], TZS_READONLY, 0, &x.c, &terr), "cemented_open (read-only)");
  tz_ok(tzs_reader_new(&x.reader, &terr), "reader_new");

  /* LMDB: the blocks in level order, MDB_APPEND, one synced commit per
   * CHUNK_LEVELS blocks; the values are generated before each commit's
   * timing starts. */
  sync();
  x.env = lmdb_open(x.dir[E_LMDB], &x.dbi);
  double load_s = 0;
  for (long from = 0; from < W.n_blocks; from += CHUNK_LEVELS) {
    long to = from + CHUNK_LEVELS < W.n_blocks ? from + CHUNK_LEVELS : W.n_blocks;
    for (long id = from; id < to; id++) serialize_block(sers + (size_t)(id - from) * SER_LEN, id);
    MDB_txn *txn;
    uint64_t l0 = now_ns();
    mdb_ok(mdb_txn_begin(x.env, NULL, 0, &txn), "txn_begin");
    for (long id = from; id < to; id++) {
      uint8_t k[4];
      level_key(k, (int32_t)(id + 1));
      MDB_val mk = {4, k}, d = {SER_LEN, sers + (size_t)(id - from) * SER_LEN};
      mdb_ok(mdb_put(txn, x.dbi, &mk, &d, MDB_APPEND), "put level");
    }
    mdb_ok(mdb_txn_commit(txn), "commit levels");
    load_s += secs_since(l0);
  }
  res[E_LMDB].level_load_s = load_s;

  /* RocksDB: one synced WriteBatch per CHUNK_LEVELS blocks, then a full
   * compaction (its best state for reads, as in (1)), timed. */
  sync();
  rocks_open(&x.rocks, x.dir[E_ROCKS]);
  load_s = 0;
  rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
  for (long from = 0; from < W.n_blocks; from += CHUNK_LEVELS) {
    long to = from + CHUNK_LEVELS < W.n_blocks ? from + CHUNK_LEVELS : W.n_blocks;
    for (long id = from; id < to; id++) serialize_block(sers + (size_t)(id - from) * SER_LEN, id);
    uint64_t l0 = now_ns();
    rocksdb_writebatch_clear(wb);
    for (long id = from; id < to; id++) {
      uint8_t k[4];
      level_key(k, (int32_t)(id + 1));
      rocksdb_writebatch_put(wb, (const char *)k, 4, (const char *)sers + (size_t)(id - from) * SER_LEN, SER_LEN);
    }
    rocksdb_write(x.rocks.db, x.rocks.wo, wb, &err);
    rdb_ok(&err, "write levels");
    load_s += secs_since(l0);
  }
  rocksdb_writebatch_destroy(wb);
  uint64_t l0 = now_ns();
  rocksdb_compact_range(x.rocks.db, NULL, 0, NULL, 0);
  res[E_ROCKS].level_load_s = load_s + secs_since(l0);
  fprintf(stderr, " %.1f s\n", secs_since(t0));

  /* Reads in rounds of BATCH per engine, as in (4). */
  fprintf(stderr, "%-20s ...", "levels: reads");
  t0 = now_ns();
  double read_s[N_ENGINES] = {0}, view_s[N_ENGINES] = {0};
  timed_rounds(&x, level_pass, ALL_ENGINES, N_ENGINES, scratch, read_s, view_s);
  fprintf(stderr, " %.1f s\n", secs_since(t0));
  for (int e = 0; e < N_ENGINES; e++) {
    res[e].level_reads_per_s = (double)W.n_reads / read_s[e];
    res[e].level_view_reads_per_s = (double)W.n_reads / view_s[e];
  }

  tzs_reader_free(x.reader);
  tzs_cemented_close(x.c);
  tzs_block_store_close(x.bs);
  mdb_env_close(x.env);
  rocks_close(&x.rocks);
  /* Closed: the cemented directory alone, and the whole block store. */
  for (int e = 0; e < N_ENGINES; e++) res[e].levels_bytes = disk_usage(x.dir[e]);
  free(sers);
  free(scratch);
}

/* ---------- workload 5: indexed-file values, all engines interleaved ---------- */

/* Value `id`: VALUE_LEN incompressible bytes that start with the id. */
static void gen_value(uint8_t *v, long id) {
  uint64_t s = (uint64_t)id ^ 0xBADC0DEULL, id64 = (uint64_t)id;
  memcpy(v, &id64, 8);
  for (int i = 8; i < VALUE_LEN; i += 8) {
    uint64_t x = splitmix64(&s);
    memcpy(v + i, &x, 8);
  }
}

/* Checks value `id` read as the `nth` read: its length and id always,
 * every byte every VERIFY_EVERY-th read. */
static void verify_value(const uint8_t *v, size_t len, long id, long nth, uint8_t *scratch) {
  uint64_t got;
  if (len != VALUE_LEN) die("value %ld: %zu bytes", id, len);
  memcpy(&got, v, 8);
  if (got != (uint64_t)id) die("value %ld: wrong value", id);
  if (nth % VERIFY_EVERY == 0) {
    gen_value(scratch, id);
    if (memcmp(v, scratch, VALUE_LEN) != 0) die("value %ld: bytes differ from what was stored", id);
  }
}

typedef struct {
  char dir[3][4096];
  MDB_env *env;
  MDB_dbi dbi;
  rocks_t rocks;
  tzs_indexed_file *f;
  tzs_reader *reader;
} values_t;

/* Stores values [from, to) in engine `e` and makes them durable. */
static void values_commit(values_t *x, int e, long from, long to, uint8_t *v) {
  uint8_t k[32];
  char *err = NULL;
  MDB_txn *txn = NULL;
  rocksdb_writebatch_t *wb = NULL;
  if (e == E_LMDB) mdb_ok(mdb_txn_begin(x->env, NULL, 0, &txn), "txn_begin");
  if (e == E_ROCKS) wb = rocksdb_writebatch_create();
  for (long id = from; id < to; id++) {
    make_key(k, (uint64_t)id, SALT_VALUE);
    gen_value(v, id);
    if (e == E_LMDB) {
      MDB_val mk = {32, k}, md = {VALUE_LEN, v};
      mdb_ok(mdb_put(txn, x->dbi, &mk, &md, 0), "put value");
    } else if (e == E_ROCKS) {
      rocksdb_writebatch_put(wb, (const char *)k, 32, (const char *)v, VALUE_LEN);
    } else {
      tz_ok(tzs_indexed_file_append(x->f, k, 32, NULL, 0, v, VALUE_LEN, false, &terr), "indexed_file_append");
    }
  }
  if (e == E_LMDB) mdb_ok(mdb_txn_commit(txn), "commit values");
  if (e == E_ROCKS) {
    rocksdb_write(x->rocks.db, x->rocks.wo, wb, &err);
    rdb_ok(&err, "write values");
    rocksdb_writebatch_destroy(wb);
  }
  if (e == E_TZS) tz_ok(tzs_indexed_file_flush(x->f, &terr), "indexed_file_flush");
}

/* Reads and checks values W.v_order[from..to) from engine `e`; with
 * `view`, without a copy where the engine offers it. */
static void value_reads(values_t *x, int e, long from, long to, uint8_t *scratch, bool view) {
  uint8_t k[32];
  char *err = NULL;
  MDB_txn *txn = NULL;
  if (e == E_LMDB) mdb_ok(mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn), "txn_begin ro");
  for (long n = from; n < to; n++) {
    long id = W.v_order[n];
    make_key(k, (uint64_t)id, SALT_VALUE);
    if (e == E_LMDB) {
      MDB_val mk = {32, k}, md;
      mdb_ok(mdb_get(txn, x->dbi, &mk, &md), "get value");
      verify_value(md.mv_data, md.mv_size, id, n, scratch);
    } else if (e == E_ROCKS && view) {
      rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(x->rocks.db, x->rocks.ro, (const char *)k, 32, &err);
      rdb_ok(&err, "get_pinned value");
      if (!ps) die("RocksDB: value %ld missing", id);
      size_t len;
      const char *got = rocksdb_pinnableslice_value(ps, &len);
      verify_value((const uint8_t *)got, len, id, n, scratch);
      rocksdb_pinnableslice_destroy(ps);
    } else if (e == E_ROCKS) {
      size_t len;
      char *got = rocksdb_get(x->rocks.db, x->rocks.ro, (const char *)k, 32, &len, &err);
      rdb_ok(&err, "get value");
      if (!got) die("RocksDB: value %ld missing", id);
      verify_value((const uint8_t *)got, len, id, n, scratch);
      rocksdb_free(got);
    } else if (view) {
      tzs_view v;
      tz_ok(tzs_indexed_file_read_view(x->f, x->reader, k, 32, &v, NULL, &terr), "indexed_file_read_view");
      verify_value(v.ptr, v.len, id, n, scratch);
    } else {
      tzs_bytes v = {NULL, 0};
      tz_ok(tzs_indexed_file_read(x->f, k, 32, &v, NULL, 0, &terr), "indexed_file_read");
      verify_value(v.ptr, v.len, id, n, scratch);
      tzs_bytes_free(&v);
    }
  }
  if (txn) mdb_txn_abort(txn);
}

static const int VALUE_ENGINES[3] = {E_LMDB, E_ROCKS, E_TZS};

static void value_pass(void *x, int e, long from, long to, uint8_t *scratch, bool view) {
  value_reads(x, e, from, to, scratch, view);
}

static void values_bench(const char *root, result_t *res) {
  values_t x;
  static const char *names[3] = {"lmdb-values", "rocksdb-values", "tzstore-indexed-file"};
  for (int i = 0; i < 3; i++) subdir(x.dir[i], sizeof x.dir[i], root, names[i]);
  uint8_t *v = xmalloc(VALUE_LEN), *scratch = xmalloc(VALUE_LEN);
  double insert_s[N_ENGINES] = {0}, read_s[N_ENGINES] = {0}, view_s[N_ENGINES] = {0};
  sync();
  x.env = lmdb_open(x.dir[0], &x.dbi);
  rocks_open(&x.rocks, x.dir[1]);
  tz_ok(tzs_indexed_file_open(x.dir[2], 32, 0, 0, 0, &x.f, &terr), "indexed_file_open");

  fprintf(stderr, "%-20s ...", "values: inserts");
  uint64_t t0 = now_ns();
  for (long from = 0; from < W.n_values; from += VALUES_PER_COMMIT) {
    long to = from + VALUES_PER_COMMIT < W.n_values ? from + VALUES_PER_COMMIT : W.n_values;
    for (int k = 0; k < 3; k++) {
      int e = VALUE_ENGINES[(from / VALUES_PER_COMMIT + k) % 3];
      uint64_t c0 = now_ns();
      values_commit(&x, e, from, to, v);
      insert_s[e] += secs_since(c0);
    }
  }
  fprintf(stderr, " %.1f s\n", secs_since(t0));

  /* Reopened, as a node reads values a previous run stored: tzstore maps
   * what is on disk at open. */
  tzs_indexed_file_close(x.f);
  tz_ok(tzs_indexed_file_open(x.dir[2], 32, 0, 0, 0, &x.f, &terr), "indexed_file_open");
  tz_ok(tzs_reader_new(&x.reader, &terr), "reader_new");
  fprintf(stderr, "%-20s ...", "values: reads");
  t0 = now_ns();
  timed_rounds(&x, value_pass, VALUE_ENGINES, 3, scratch, read_s, view_s);
  fprintf(stderr, " %.1f s\n", secs_since(t0));
  for (int k = 0; k < 3; k++) {
    int e = VALUE_ENGINES[k];
    res[e].value_inserts_per_s = (double)W.n_values / insert_s[e];
    res[e].value_reads_per_s = (double)W.n_reads / read_s[e];
    res[e].value_view_reads_per_s = (double)W.n_reads / view_s[e];
  }
  tzs_reader_free(x.reader);
  tzs_indexed_file_close(x.f);
  mdb_env_close(x.env);
  rocks_close(&x.rocks);
  for (int k = 0; k < 3; k++) res[VALUE_ENGINES[k]].values_bytes = disk_usage(x.dir[k]); /* all closed */
  free(v);
  free(scratch);
}

/* ---------- workload 7: the index at growing sizes ---------- */

static const int GROW_ENGINES[3] = {E_LMDB, E_ROCKS, E_TZS};

typedef struct {
  char dir[N_ENGINES][4096];
  MDB_env *env;
  MDB_dbi dbi;
  rocks_t rocks;
  tzs_index *ix;
} grow_t;

static void grow_open(grow_t *g, int e) {
  if (e == E_LMDB) g->env = lmdb_open(g->dir[e], &g->dbi);
  else if (e == E_ROCKS) rocks_open(&g->rocks, g->dir[e]);
  else tz_ok(tzs_index_open(g->dir[e], KEY_LEN, VAL_LEN, 0, 0, &g->ix, &terr), "index_open");
}

static void grow_close(grow_t *g, int e) {
  if (e == E_LMDB) mdb_env_close(g->env);
  else if (e == E_ROCKS) rocks_close(&g->rocks);
  else tzs_index_close(g->ix);
}

/* Bytes the process's threads passed to write system calls: /proc/self/io
 * `wchar`. All three engines write their files with write/pwrite (LMDB
 * without MDB_WRITEMAP, RocksDB without mmap writes, tzstore always), so
 * this is the data they send to storage, at byte rather than page
 * granularity. Not `write_bytes`: on the kernel measured (6.18, ext4 with
 * large folios) it charges a whole folio each time a write dirties a
 * 4 KiB page of it: 20,000 random 4 KiB pwrite + fdatasync counted
 * 5,276 MB in write_bytes, 81.9 MB in wchar, 81.8 MB in /proc/diskstats. */
static double io_written(void) {
  FILE *f = fopen("/proc/self/io", "r");
  if (!f) die("open /proc/self/io: %s", strerror(errno));
  char line[128];
  double w = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long long v;
    if (sscanf(line, "wchar: %llu", &v) == 1) w = (double)v;
  }
  fclose(f);
  if (w < 0) die("/proc/self/io has no wchar");
  return w;
}

/* Inserts keys [from, to) (keys[i] -> value_of(i)), durable every BATCH,
 * as in (1). */
static void grow_insert(grow_t *g, int e, const uint8_t *keys, long from, long to) {
  uint8_t v[VAL_LEN];
  char *err = NULL;
  rocksdb_writebatch_t *wb = e == E_ROCKS ? rocksdb_writebatch_create() : NULL;
  for (long b = from; b < to; b += BATCH) {
    long end = b + BATCH < to ? b + BATCH : to;
    if (e == E_LMDB) {
      MDB_txn *txn;
      mdb_ok(mdb_txn_begin(g->env, NULL, 0, &txn), "txn_begin");
      for (long i = b; i < end; i++) {
        MDB_val k = {KEY_LEN, (void *)(keys + (size_t)i * KEY_LEN)};
        value_of(v, (uint64_t)i);
        MDB_val d = {VAL_LEN, v};
        mdb_ok(mdb_put(txn, g->dbi, &k, &d, 0), "put");
      }
      mdb_ok(mdb_txn_commit(txn), "commit");
    } else if (e == E_ROCKS) {
      rocksdb_writebatch_clear(wb);
      for (long i = b; i < end; i++) {
        value_of(v, (uint64_t)i);
        rocksdb_writebatch_put(wb, (const char *)keys + (size_t)i * KEY_LEN, KEY_LEN, (const char *)v, VAL_LEN);
      }
      rocksdb_write(g->rocks.db, g->rocks.wo, wb, &err);
      rdb_ok(&err, "write batch");
    } else {
      for (long i = b; i < end; i++) {
        value_of(v, (uint64_t)i);
        tz_ok(tzs_index_add(g->ix, keys + (size_t)i * KEY_LEN, KEY_LEN, v, VAL_LEN, false, &terr), "index_add");
      }
      tz_ok(tzs_index_flush(g->ix, &terr), "index_flush");
    }
  }
  if (wb) rocksdb_writebatch_destroy(wb);
}

/* Waits for the work an engine left in the background: tzstore its index
 * merge, RocksDB a flush of its memtable and then until no compaction is
 * pending or running; LMDB has none. */
static void grow_settle(grow_t *g, int e) {
  if (e == E_TZS) {
    tz_ok(tzs_index_await_merge(g->ix, &terr), "index_await_merge");
  } else if (e == E_ROCKS) {
    char *err = NULL;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    rocksdb_flush(g->rocks.db, fo, &err);
    rdb_ok(&err, "flush");
    rocksdb_flushoptions_destroy(fo);
    for (;;) {
      uint64_t pending = 0, running = 0;
      if (rocksdb_property_int(g->rocks.db, "rocksdb.compaction-pending", &pending) != 0 ||
          rocksdb_property_int(g->rocks.db, "rocksdb.num-running-compactions", &running) != 0)
        die("RocksDB: compaction properties unavailable");
      if (pending == 0 && running == 0) break;
      usleep(10000);
    }
  }
}

/* GROW_LOOKUPS lookups of keys[idx[n]], then GROW_LOOKUPS of absent keys,
 * every value checked; LMDB in one read transaction renewed every BATCH. */
static void grow_lookups(grow_t *g, int e, const uint8_t *keys, const uint32_t *idx, const uint8_t *absent_keys,
                         double *hits_per_s, double *misses_per_s) {
  char *err = NULL;
  uint8_t v[VAL_LEN];
  for (int absent = 0; absent < 2; absent++) {
    MDB_txn *txn = NULL;
    if (e == E_LMDB) mdb_ok(mdb_txn_begin(g->env, NULL, MDB_RDONLY, &txn), "txn_begin ro");
    uint64_t t0 = now_ns();
    for (long n = 0; n < GROW_LOOKUPS; n++) {
      uint32_t i = idx[n];
      const uint8_t *k = absent ? absent_keys + (size_t)n * KEY_LEN : keys + (size_t)i * KEY_LEN;
      if (e == E_LMDB) {
        if (n > 0 && n % BATCH == 0) {
          mdb_txn_reset(txn);
          mdb_ok(mdb_txn_renew(txn), "txn_renew");
        }
        MDB_val mk = {KEY_LEN, (void *)k}, d;
        int rc = mdb_get(txn, g->dbi, &mk, &d);
        if (absent) {
          if (rc != MDB_NOTFOUND) die("LMDB: absent key found (rc %d)", rc);
        } else {
          mdb_ok(rc, "get");
          check_value(d.mv_data, d.mv_size, i);
        }
      } else if (e == E_ROCKS) {
        size_t len;
        char *got = rocksdb_get(g->rocks.db, g->rocks.ro, (const char *)k, KEY_LEN, &len, &err);
        rdb_ok(&err, "get");
        if (absent) {
          if (got) die("RocksDB: absent key found");
        } else {
          if (!got) die("RocksDB: key %u missing", i);
          check_value((const uint8_t *)got, len, i);
          rocksdb_free(got);
        }
      } else {
        tzs_status st = tzs_index_find(g->ix, k, KEY_LEN, v, VAL_LEN, &terr);
        if (absent) {
          if (st == TZS_OK) die("tzstore: absent key found");
          if (st != TZS_NOT_FOUND) tz_ok(st, "index_find (absent key)");
        } else {
          tz_ok(st, "index_find");
          check_value(v, VAL_LEN, i);
        }
      }
    }
    double rate = (double)GROW_LOOKUPS / secs_since(t0);
    if (txn) mdb_txn_abort(txn);
    if (absent) *misses_per_s = rate;
    else *hits_per_s = rate;
  }
}

/* Grows each engine's key -> value store through the sizes W.grow[]. At
 * each size, engine after engine (the first one rotating): the stage's
 * inserts, the settle, a check of the count, close, bytes on disk and the
 * bytes written over the stage, reopen, lookups. */
static void grow_bench(const char *root, result_t *res) {
  grow_t g;
  static const char *names[3] = {"lmdb-grow", "rocksdb-grow", "tzstore-grow"};
  for (int k = 0; k < 3; k++) subdir(g.dir[GROW_ENGINES[k]], sizeof g.dir[0], root, names[k]);
  long max = W.grow[W.n_grow - 1];
  uint8_t *keys = xmalloc((size_t)max * KEY_LEN), *absent = xmalloc((size_t)GROW_LOOKUPS * KEY_LEN);
  uint32_t *idx = xmalloc((size_t)GROW_LOOKUPS * sizeof *idx);
  for (long i = 0; i < max; i++) make_key(keys + (size_t)i * KEY_LEN, (uint64_t)i, SALT_GROW);
  for (long i = 0; i < GROW_LOOKUPS; i++) make_key(absent + (size_t)i * KEY_LEN, (uint64_t)i, SALT_GROW_ABSENT);
  for (int k = 0; k < 3; k++) grow_open(&g, GROW_ENGINES[k]);
  uint64_t s = 4242;
  long prev = 0;
  for (int st = 0; st < W.n_grow; st++) {
    long size = W.grow[st], added = size - prev;
    for (long n = 0; n < GROW_LOOKUPS; n++) idx[n] = (uint32_t)(splitmix64(&s) % (uint64_t)size);
    fprintf(stderr, "grow to %-11ld ...", size);
    for (int k = 0; k < 3; k++) {
      int e = GROW_ENGINES[(st + k) % 3];
      result_t *r = &res[e];
      sync();
      uint64_t e0 = now_ns();
      double w0 = io_written();
      uint64_t t0 = now_ns();
      grow_insert(&g, e, keys, prev, size);
      double insert_s = secs_since(t0);
      t0 = now_ns();
      grow_settle(&g, e);
      double settle_s = secs_since(t0);
      if (e == E_LMDB) {
        MDB_stat ms;
        mdb_ok(mdb_env_stat(g.env, &ms), "env_stat");
        if ((long)ms.ms_entries != size) die("LMDB holds %zu keys, want %ld", ms.ms_entries, size);
      } else if (e == E_TZS && (long)tzs_index_len(g.ix) != size) {
        die("tzstore index holds %" PRIu64 " keys, want %ld", tzs_index_len(g.ix), size);
      }
      grow_close(&g, e);
      double written = io_written() - w0;
      r->grow_inserts_per_s[st] = (double)added / insert_s;
      r->grow_settled_inserts_per_s[st] = (double)added / (insert_s + settle_s);
      r->grow_write_amp[st] = written / ((double)added * (KEY_LEN + VAL_LEN));
      r->grow_bytes[st] = disk_usage(g.dir[e]);
      grow_open(&g, e);
      grow_lookups(&g, e, keys, idx, absent, &r->grow_hits_per_s[st], &r->grow_misses_per_s[st]);
      fprintf(stderr, " %s %.1f s", ENGINE_NAMES[e], secs_since(e0));
    }
    fprintf(stderr, "\n");
    prev = size;
  }
  for (int k = 0; k < 3; k++) grow_close(&g, GROW_ENGINES[k]);
  free(keys);
  free(absent);
  free(idx);
}

/* ---------- the machine's own limits, measured in the same run ---------- */

/* What the hardware and kernel allow for the operations the workloads are
 * made of; each tzstore figure is also shown as a fraction of one. */
static struct {
  double memcpy_10k_per_s;   /* 10 KiB copies between random places of 256 MiB */
  double map_touch_per_s;    /* first 8 bytes of a random 10 KiB record of a 100 MB mapped file,
                              * each address depending on the previous touch */
  double cache_pread_per_s;  /* 10 KiB preads at random offsets of a cached 100 MB file */
  double seq_write_mbs;      /* 100 MB written in 1 MiB writes, then one fsync */
  double fdatasync_per_s;    /* 10 KiB write + fdatasync, over already written blocks */
} LIM;

#define LIM_FILE_MB 100
#define LIM_REC 10240

static void measure_limits(const char *root) {
  char path[4096];
  snprintf(path, sizeof path, "%s/limits.bin", root);
  const size_t file_len = (size_t)LIM_FILE_MB << 20, recs = file_len / LIM_REC;
  uint8_t *buf = xmalloc(1 << 20);
  uint64_t s = 7;
  for (size_t i = 0; i < (1 << 20); i += 8) {
    uint64_t x = splitmix64(&s);
    memcpy(buf + i, &x, 8);
  }

  /* Sequential write + fsync. */
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die("open %s: %s", path, strerror(errno));
  sync();
  uint64_t t0 = now_ns();
  for (size_t off = 0; off < file_len; off += 1 << 20)
    if (pwrite(fd, buf, 1 << 20, (off_t)off) != 1 << 20) die("pwrite: %s", strerror(errno));
  if (fsync(fd) != 0) die("fsync: %s", strerror(errno));
  LIM.seq_write_mbs = (double)LIM_FILE_MB / secs_since(t0);

  /* One fdatasync per 10 KiB write, over blocks already written and synced
   * (as tzstore's zeros written ahead let its appends do). */
  const int n_sync = 300;
  t0 = now_ns();
  for (int i = 0; i < n_sync; i++) {
    if (pwrite(fd, buf, LIM_REC, (off_t)i * LIM_REC) != LIM_REC) die("pwrite: %s", strerror(errno));
    if (fdatasync(fd) != 0) die("fdatasync: %s", strerror(errno));
  }
  LIM.fdatasync_per_s = n_sync / secs_since(t0);

  /* Random preads from the page cache (the file was just written). */
  uint8_t *rec = xmalloc(LIM_REC);
  const long n_reads = 200000;
  volatile uint64_t sink = 0;
  t0 = now_ns();
  for (long i = 0; i < n_reads; i++) {
    size_t r = splitmix64(&s) % recs;
    if (pread(fd, rec, LIM_REC, (off_t)(r * LIM_REC)) != LIM_REC) die("pread: %s", strerror(errno));
    sink += rec[0];
  }
  LIM.cache_pread_per_s = n_reads / secs_since(t0);

  /* Random first touches of records in a map of the same file. */
  const uint8_t *map = mmap(NULL, file_len, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) die("mmap: %s", strerror(errno));
  const long n_touch = 1000000;
  for (size_t off = 0; off < file_len; off += 4096) sink += map[off]; /* page tables in */
  /* Each address depends on the bytes the previous touch read, as a
   * store's read depends on its index lookup: no overlapping of misses. */
  uint64_t x = 0;
  t0 = now_ns();
  for (long i = 0; i < n_touch; i++) {
    s ^= x & 1;
    memcpy(&x, map + (splitmix64(&s) % recs) * LIM_REC, 8);
  }
  sink += x;
  LIM.map_touch_per_s = n_touch / secs_since(t0);
  munmap((void *)map, file_len);
  close(fd);
  unlink(path);

  /* memcpy of 10 KiB between random places of 256 MiB. */
  const size_t big = (size_t)256 << 20;
  uint8_t *a = xmalloc(big);
  memset(a, 1, big);
  const long n_copy = 200000;
  t0 = now_ns();
  for (long i = 0; i < n_copy; i++) {
    size_t from = splitmix64(&s) % (big / LIM_REC), to = splitmix64(&s) % (big / LIM_REC);
    memcpy(rec, a + from * LIM_REC, LIM_REC);
    memcpy(a + to * LIM_REC, rec, LIM_REC);
    sink += rec[0];
  }
  LIM.memcpy_10k_per_s = 2.0 * n_copy / secs_since(t0);
  free(a);
  free(rec);
  free(buf);
  (void)sink;
}

static void print_limits(const result_t *res) {
  printf("\n| machine limit (same run) | rate | tzstore against it |\n|---|---:|---|\n");
  printf("| sequential write + fsync, 1 MiB writes | %.0f MB/s | — |\n", LIM.seq_write_mbs);
  printf("| one fdatasync per 10 KiB write | %.0f /s | durable block appends: floating %.0f%%, block store %.0f%% |\n",
         LIM.fdatasync_per_s, 100 * res[E_TZS].appends_per_s / LIM.fdatasync_per_s,
         100 * res[E_TZS_BS].appends_per_s / LIM.fdatasync_per_s);
  printf("| first touch of a random 10 KiB record in a map | %.0f /s | block reads without a copy %.0f%%, "
         "value reads without a copy %.0f%% |\n",
         LIM.map_touch_per_s, 100 * res[E_TZS].view_reads_per_s / LIM.map_touch_per_s,
         100 * res[E_TZS].value_view_reads_per_s / LIM.map_touch_per_s);
  printf("| 10 KiB pread from the page cache | %.0f /s | block reads, copying: %.0f%% |\n", LIM.cache_pread_per_s,
         100 * res[E_TZS].reads_per_s / LIM.cache_pread_per_s);
  printf("| memcpy of 10 KiB (random places of 256 MiB) | %.0f /s | block reads, copying: %.0f%% |\n",
         LIM.memcpy_10k_per_s, 100 * res[E_TZS].reads_per_s / LIM.memcpy_10k_per_s);
}

/* ---------- SVG chart ---------- */

typedef struct {
  char name[64];
  size_t off;
} chart_row_t;

static const chart_row_t CHART_FIXED[] = {
    {"1. durable inserts", offsetof(result_t, inserts_per_s)},
    {"2. lookups, present", offsetof(result_t, hits_per_s)},
    {"2. lookups, absent", offsetof(result_t, misses_per_s)},
    {"3. durable block appends", offsetof(result_t, appends_per_s)},
    {"4. block reads, copying", offsetof(result_t, reads_per_s)},
    {"4. block reads, no copy", offsetof(result_t, view_reads_per_s)},
    {"4. same, two threads", offsetof(result_t, view_reads_2t_per_s)},
    {"5. durable value inserts", offsetof(result_t, value_inserts_per_s)},
    {"5. value reads, copying", offsetof(result_t, value_reads_per_s)},
    {"5. value reads, no copy", offsetof(result_t, value_view_reads_per_s)},
    {"6. reads by level, copying", offsetof(result_t, level_reads_per_s)},
    {"6. reads by level, no copy", offsetof(result_t, level_view_reads_per_s)},
};

/* A count as the chart prints it: 4000000 -> "4M", 200000 -> "200k". */
static void short_count(char *out, size_t n, long v) {
  if (v % 1000000 == 0) snprintf(out, n, "%ldM", v / 1000000);
  else if (v % 1000 == 0) snprintf(out, n, "%ldk", v / 1000);
  else snprintf(out, n, "%ld", v);
}

/* The chart's rows: the fixed ones, then workload 7's ops/s at each size. */
static int chart_rows(chart_row_t *rows) {
  int n = 0;
  for (size_t i = 0; i < sizeof CHART_FIXED / sizeof CHART_FIXED[0]; i++) rows[n++] = CHART_FIXED[i];
  for (int i = 0; i < W.n_grow; i++) {
    char c[24];
    short_count(c, sizeof c, W.grow[i]);
    snprintf(rows[n].name, sizeof rows[n].name, "7. %s keys: inserts", c);
    rows[n++].off = GROW_OFF(grow_inserts_per_s, i);
    snprintf(rows[n].name, sizeof rows[n].name, "7. %s keys: lookups, present", c);
    rows[n++].off = GROW_OFF(grow_hits_per_s, i);
    snprintf(rows[n].name, sizeof rows[n].name, "7. %s keys: lookups, absent", c);
    rows[n++].off = GROW_OFF(grow_misses_per_s, i);
  }
  return n;
}

/* A grouped horizontal bar chart of ops/s (log scale), one group per
 * workload, one bar per engine that ran it. */
static void write_svg(const char *path, const result_t *res) {
  static const char *colors[N_ENGINES] = {"#888888", "#c0504d", "#2f6fb0", "#6fa8dc"};
  chart_row_t CHART_ROWS[sizeof CHART_FIXED / sizeof CHART_FIXED[0] + 3 * MAX_GROW];
  const int rows = chart_rows(CHART_ROWS);
  const int left = 200, bar_h = 9, group_h = 4 * bar_h + 12, top = 50, width = 900, plot_w = 620;
  const int height = top + rows * group_h + 40;
  const double lo = 1e2, hi = 1e8; /* log10 axis from 100 to 100 M ops/s */
  FILE *f = fopen(path, "w");
  if (!f) die("open %s: %s", path, strerror(errno));
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
          "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
          "<text x=\"10\" y=\"18\" font-size=\"14\">tzstore vs LMDB vs RocksDB: operations per second "
          "(log scale, higher is better)</text>\n",
          width, height);
  for (int e = 0; e < N_ENGINES; e++)
    fprintf(f, "<rect x=\"%d\" y=\"28\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"37\">%s</text>\n",
            10 + e * 170, colors[e], 24 + e * 170, ENGINE_NAMES[e]);
  for (double t = lo; t <= hi; t *= 10) {
    double x = left + plot_w * log10(t / lo) / log10(hi / lo);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#dddddd\"/>\n", x, top - 4, x,
            top + rows * group_h);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0e</text>\n", x, top + rows * group_h + 14, t);
  }
  for (int r = 0; r < rows; r++) {
    int y0 = top + r * group_h;
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", left - 8, y0 + 2 * bar_h + 4,
            CHART_ROWS[r].name);
    for (int e = 0; e < N_ENGINES; e++) {
      double v = *(const double *)((const char *)&res[e] + CHART_ROWS[r].off);
      if (v <= 0) continue;
      double w = plot_w * log10((v > lo ? v : lo) / lo) / log10(hi / lo);
      fprintf(f,
              "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%s: %.0f/s</title></rect>\n"
              "<text x=\"%.1f\" y=\"%d\" font-size=\"9\">%.3g</text>\n",
              left, y0 + e * bar_h, w, bar_h - 1, colors[e], ENGINE_NAMES[e], v, left + w + 3, y0 + e * bar_h + 8,
              v);
    }
  }
  fprintf(f, "</svg>\n");
  if (fclose(f) != 0) die("write %s: %s", path, strerror(errno));
}

/* ---------- report ---------- */

static void print_engine(int e, const result_t *r) {
  printf("%-20s", ENGINE_NAMES[e]);
  if (r->inserts_per_s >= 0)
    printf(" inserts %.0f/s (settle %.2f s, %.1f MB on disk), hits %.0f/s, misses %.0f/s;", r->inserts_per_s,
           r->settle_s, r->index_bytes / 1e6, r->hits_per_s, r->misses_per_s);
  if (r->appends_per_s >= 0)
    printf(" appends %.0f/s (p50 %.0f us, p99 %.0f us, %.1f MB on disk), reads %.0f/s", r->appends_per_s,
           r->append_p50_us, r->append_p99_us, r->blocks_bytes / 1e6, r->reads_per_s);
  if (r->view_reads_per_s >= 0) printf(", view reads %.0f/s", r->view_reads_per_s);
  if (r->level_reads_per_s >= 0)
    printf("; by level: reads %.0f/s, view reads %.0f/s, %.1f MB on disk", r->level_reads_per_s,
           r->level_view_reads_per_s, r->levels_bytes / 1e6);
  if (r->value_reads_per_s >= 0)
    printf("; values: inserts %.0f/s, reads %.0f/s, view reads %.0f/s, %.1f MB on disk", r->value_inserts_per_s,
           r->value_reads_per_s, r->value_view_reads_per_s, r->values_bytes / 1e6);
  printf("\n");
  fflush(stdout);
}

static void fmt_cell(char *out, size_t n, double v, const char *fmt) {
  if (v < 0) snprintf(out, n, "—");
  else snprintf(out, n, fmt, v);
}

/* One table row: the first `n_cols` engines' values, then tzstore's
 * advantage over the best of LMDB and RocksDB (> 1 = tzstore better), per
 * tzstore column. */
static void row_n(const char *name, const result_t *res, size_t off, const char *fmt, double scale,
                  bool lower_is_better, int n_cols) {
  double v[N_ENGINES];
  char cell[64];
  printf("| %s |", name);
  for (int e = 0; e < n_cols; e++) {
    v[e] = *(const double *)((const char *)&res[e] + off);
    fmt_cell(cell, sizeof cell, v[e] < 0 ? v[e] : v[e] / scale, fmt);
    printf(" %s |", cell);
  }
  double best = lower_is_better ? (v[E_LMDB] < v[E_ROCKS] ? v[E_LMDB] : v[E_ROCKS])
                                : (v[E_LMDB] > v[E_ROCKS] ? v[E_LMDB] : v[E_ROCKS]);
  printf(" ");
  bool first = true;
  for (int e = E_TZS; e < n_cols; e++) {
    if (v[e] < 0 || best < 0) continue;
    double ratio = lower_is_better ? best / v[e] : v[e] / best;
    printf("%s%.2fx", first ? "" : " / ", ratio);
    first = false;
  }
  printf(" |\n");
}

static void row(const char *name, const result_t *res, size_t off, const char *fmt, double scale,
                bool lower_is_better) {
  row_n(name, res, off, fmt, scale, lower_is_better, N_ENGINES);
}

static void print_grow_table(const result_t *res) {
  char name[160];
  printf("\n| 7. index at growing sizes (32-byte keys, 8-byte values, commit per %d) | LMDB | RocksDB | tzstore "
         "| tzstore vs best other |\n|---|---:|---:|---:|---:|\n",
         BATCH);
  long prev = 0;
  for (int i = 0; i < W.n_grow; i++) {
    long size = W.grow[i];
    snprintf(name, sizeof name, "%ld keys: durable inserts %ld -> %ld (inserts/s)", size, prev, size);
    row_n(name, res, GROW_OFF(grow_inserts_per_s, i), "%.0f", 1, false, 3);
    snprintf(name, sizeof name, "%ld keys: the same, settle included (inserts/s)", size);
    row_n(name, res, GROW_OFF(grow_settled_inserts_per_s, i), "%.0f", 1, false, 3);
    snprintf(name, sizeof name, "%ld keys: lookups, %d present keys (lookups/s)", size, GROW_LOOKUPS);
    row_n(name, res, GROW_OFF(grow_hits_per_s, i), "%.0f", 1, false, 3);
    snprintf(name, sizeof name, "%ld keys: lookups, %d absent keys (lookups/s)", size, GROW_LOOKUPS);
    row_n(name, res, GROW_OFF(grow_misses_per_s, i), "%.0f", 1, false, 3);
    snprintf(name, sizeof name, "%ld keys: bytes on disk, engine closed (MB)", size);
    row_n(name, res, GROW_OFF(grow_bytes, i), "%.1f", 1e6, true, 3);
    snprintf(name, sizeof name, "%ld keys: bytes written per byte of key+value added (%ld -> %ld)", size, prev,
             size);
    row_n(name, res, GROW_OFF(grow_write_amp, i), "%.1f", 1, true, 3);
    prev = size;
  }
  printf("\nBytes written: the growth of /proc/self/io wchar (bytes passed to write system calls by\n"
         "every thread) over the stage (inserts, settle, close), divided by the stage's keys x %d bytes;\n"
         "see README.md for what it counts and why not write_bytes.\n",
         KEY_LEN + VAL_LEN);
}

static void print_table(const result_t *res) {
  printf("\n| workload | LMDB | RocksDB | tzstore | tzstore block store | tzstore vs best other |\n");
  printf("|---|---:|---:|---:|---:|---:|\n");
  char name[128];
  snprintf(name, sizeof name, "1. durable inserts, %ld keys, commit per %d (inserts/s)", W.n_keys, BATCH);
  row(name, res, offsetof(result_t, inserts_per_s), "%.0f", 1, false);
  row("2. lookups, present keys (lookups/s)", res, offsetof(result_t, hits_per_s), "%.0f", 1, false);
  row("2. lookups, absent keys (lookups/s)", res, offsetof(result_t, misses_per_s), "%.0f", 1, false);
  row("1. bytes on disk after (1) and (2), engine closed (MB)", res, offsetof(result_t, index_bytes), "%.1f", 1e6,
      true);
  snprintf(name, sizeof name, "3. durable block appends, %ld x 10 KiB (blocks/s)", W.n_blocks);
  row(name, res, offsetof(result_t, appends_per_s), "%.0f", 1, false);
  row("3. append latency p50 (µs)", res, offsetof(result_t, append_p50_us), "%.0f", 1, true);
  row("3. append latency p99 (µs)", res, offsetof(result_t, append_p99_us), "%.0f", 1, true);
  row("3. bytes on disk after (3) and (4), engine closed (MB)", res, offsetof(result_t, blocks_bytes), "%.1f", 1e6,
      true);
  snprintf(name, sizeof name, "4. block reads by hash, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, reads_per_s), "%.0f", 1, false);
  snprintf(name, sizeof name, "4. block reads by hash without a copy, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, view_reads_per_s), "%.0f", 1, false);
  snprintf(name, sizeof name, "4. block reads without a copy, two threads, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, view_reads_2t_per_s), "%.0f", 1, false);
  snprintf(name, sizeof name, "5. durable value inserts, %ld x 2 KiB, commit per %d (values/s)", W.n_values,
           VALUES_PER_COMMIT);
  row(name, res, offsetof(result_t, value_inserts_per_s), "%.0f", 1, false);
  snprintf(name, sizeof name, "5. value reads by key, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, value_reads_per_s), "%.0f", 1, false);
  snprintf(name, sizeof name, "5. value reads by key without a copy, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, value_view_reads_per_s), "%.0f", 1, false);
  row("5. bytes on disk after (5), engine closed (MB)", res, offsetof(result_t, values_bytes), "%.1f", 1e6, true);
  snprintf(name, sizeof name,
           "6. storing (3)'s blocks by level: tzstore merge into chunks of %d, LMDB/RocksDB load (s)", CHUNK_LEVELS);
  row(name, res, offsetof(result_t, level_load_s), "%.2f", 1, true);
  snprintf(name, sizeof name, "6. cemented block reads by level, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, level_reads_per_s), "%.0f", 1, false);
  snprintf(name, sizeof name, "6. cemented block reads by level without a copy, %ld random (reads/s)", W.n_reads);
  row(name, res, offsetof(result_t, level_view_reads_per_s), "%.0f", 1, false);
  row("6. bytes on disk after (6), engine closed (MB)", res, offsetof(result_t, levels_bytes), "%.1f", 1e6, true);
  printf("\n\"tzstore vs best other\": tzstore's figure against the better of LMDB and RocksDB,\n"
         "> 1 means tzstore is better (faster, lower latency or smaller); for block workloads\n"
         "the floating store first, then the block store; in (6) the \"tzstore\" column is the\n"
         "block store's cemented store (tzs_cemented, opened read-only beside it).\n");
}

/* Runs one engine's workloads in a fresh subdirectory `name` of `root`,
 * after a `sync()` so the previous engine's writeback does not land in
 * this one's fsyncs. */
static void run(const char *root, const char *name, void (*bench)(const char *, result_t *), result_t *r) {
  char dir[4096];
  sync();
  subdir(dir, sizeof dir, root, name);
  fprintf(stderr, "%-20s ...", name);
  uint64_t t0 = now_ns();
  bench(dir, r);
  fprintf(stderr, " %.1f s\n", secs_since(t0));
}

/* TZS_COMPARE_GROW: workload 7's sizes, comma-separated and increasing
 * ("0" or empty: skip the workload). */
static void parse_grow(const char *spec) {
  W.n_grow = 0;
  if (!spec || !*spec || strcmp(spec, "0") == 0) return;
  const char *p = spec;
  for (;;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v <= 0 || v > 100000000 || W.n_grow == MAX_GROW || (W.n_grow > 0 && v <= W.grow[W.n_grow - 1]))
      die("bad TZS_COMPARE_GROW '%s' (up to %d increasing counts, comma-separated)", spec, MAX_GROW);
    W.grow[W.n_grow++] = v;
    if (*end == 0) break;
    if (*end != ',') die("bad TZS_COMPARE_GROW '%s'", spec);
    p = end + 1;
  }
}

/* TZS_COMPARE_ONLY: the workloads to run, comma-separated (index, blocks,
 * levels, values, grow, limits; unset: all). For profiling one workload;
 * "levels" needs "blocks", whose block store it reads. */
static bool only(const char *name) {
  const char *spec = getenv("TZS_COMPARE_ONLY");
  if (!spec || !*spec) return true;
  size_t n = strlen(name);
  for (const char *p = spec; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return true;
    if (!end) break;
    p = end + 1;
  }
  return false;
}

static long arg_long(int argc, char **argv, int i, long dflt) {
  if (argc <= i) return dflt;
  char *end;
  long v = strtol(argv[i], &end, 10);
  if (*end || v <= 0 || v > 100000000) die("bad count '%s'", argv[i]);
  return v;
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: compare DIR [N_KEYS [N_BLOCKS [N_READS [N_VALUES]]]]");
  const char *root = argv[1];
  W.n_keys = arg_long(argc, argv, 2, 1000000);
  W.n_blocks = arg_long(argc, argv, 3, 10000);
  W.n_reads = arg_long(argc, argv, 4, 100000);
  W.n_values = arg_long(argc, argv, 5, 50000);
  const char *grow = getenv("TZS_COMPARE_GROW");
  parse_grow(grow ? grow : DEFAULT_GROW);

  int lmaj, lmin, lpatch;
  mdb_version(&lmaj, &lmin, &lpatch);
  printf("tzstore %s, LMDB %d.%d.%d, RocksDB (librocksdb C API); dir %s\n", tzs_version(), lmaj, lmin, lpatch,
         root);
  printf("keys %ld, blocks %ld, reads %ld, values %ld, grow", W.n_keys, W.n_blocks, W.n_reads, W.n_values);
  for (int i = 0; i < W.n_grow; i++) printf("%s%ld", i ? "," : " ", W.grow[i]);
  printf("%s\n", W.n_grow ? "" : " (skipped)");
  print_loadavg("start");
  uint64_t start = now_ns();
  gen_workload();

  result_t res[N_ENGINES];
  for (int e = 0; e < N_ENGINES; e++)
    for (size_t k = 0; k < sizeof(result_t) / sizeof(double); k++) ((double *)&res[e])[k] = -1;

  if (only("index")) {
    run(root, "lmdb-index", lmdb_index, &res[E_LMDB]);
    run(root, "rocksdb-index", rocks_index, &res[E_ROCKS]);
    run(root, "tzstore-index", tzs_index_bench, &res[E_TZS]);
  }
  if (only("blocks")) blocks_bench(root, res);
  if (only("blocks") && only("levels")) {
    char bs_dir[4096];
    snprintf(bs_dir, sizeof bs_dir, "%s/tzstore-block-store", root);
    levels_bench(root, bs_dir, res);
  }
  if (only("values")) values_bench(root, res);
  if (W.n_grow > 0 && only("grow")) grow_bench(root, res);
  if (only("limits")) {
    fprintf(stderr, "%-20s ...", "machine limits");
    uint64_t l0 = now_ns();
    measure_limits(root);
    fprintf(stderr, " %.1f s\n", secs_since(l0));
  }

  printf("\n");
  for (int e = 0; e < N_ENGINES; e++) print_engine(e, &res[e]);
  print_table(res);
  if (W.n_grow > 0 && only("grow")) print_grow_table(res);
  if (only("limits")) print_limits(res);
  const char *svg = getenv("TZS_COMPARE_SVG");
  if (svg && *svg) write_svg(svg, res);
  printf("\ntotal %.1f s\n", secs_since(start));
  print_loadavg("end");
  free(W.keys);
  free(W.absent);
  free(W.order);
  free(W.b_order);
  free(W.v_order);
  free(W.l_order);
  return 0;
}
