/* The tzs_filter_fn of the OCaml binding (gc_filter.ml): a C function that
 * calls the OCaml closure its ctx names. A ctypes callback costs about
 * 3.6 us per binding (libffi, and a boxed partial application with a
 * finaliser per argument); this costs the two string copies and the
 * runtime lock.
 *
 * ctx points to a generational global root holding a closure of type
 * string -> string -> bool that never raises (gc_filter.ml catches its
 * exceptions). The library calls the filter on one of its worker threads
 * or on a thread waiting for the GC in a stub that released the runtime
 * lock: the filter holds the lock while the closure runs, and registers a
 * library thread with the runtime on its first call (OCaml threads are
 * registered already), unregistering it when the thread exits (a
 * thread-specific key's destructor), as the runtime requires. */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <tzstore.h>
#include <caml/alloc.h>
#include <caml/callback.h>
#include <caml/memory.h>
#include <caml/mlvalues.h>
#include <caml/threads.h>

static bool call_filter(value *closure, const uint8_t *key, size_t key_len, const uint8_t *value_,
                        size_t value_len) {
  CAMLparam0();
  CAMLlocal3(k, v, r);
  k = caml_alloc_initialized_string(key_len, (const char *)key);
  v = caml_alloc_initialized_string(value_len, (const char *)value_);
  r = caml_callback2_exn(*closure, k, v);
  /* Only an asynchronous exception (Out_of_memory, a signal handler's)
   * gets here: keep the binding. */
  CAMLreturnT(bool, Is_exception_result(r) ? true : Bool_val(r));
}

static pthread_key_t registered_key;
static pthread_once_t registered_once = PTHREAD_ONCE_INIT;

static void unregister_thread(void *unused) {
  (void)unused;
  caml_c_thread_unregister();
}

static void make_registered_key(void) { pthread_key_create(&registered_key, unregister_thread); }

/* Registers this thread with the runtime unless it is (an OCaml thread,
 * or a library thread registered by an earlier call). */
static void register_thread(void) {
  pthread_once(&registered_once, make_registered_key);
  if (pthread_getspecific(registered_key) == NULL && caml_c_thread_register() == 1)
    pthread_setspecific(registered_key, &registered_key);
}

static bool tzstore_ocaml_filter(void *ctx, const uint8_t *key, size_t key_len,
                                 const uint8_t *value_, size_t value_len) {
  register_thread();
  caml_acquire_runtime_system();
  bool keep = call_filter((value *)ctx, key, key_len, value_, value_len);
  caml_release_runtime_system();
  return keep;
}

/* The header's callback type, checked by the compiler. */
static const tzs_filter_fn tzstore_filter_fn = tzstore_ocaml_filter;

value tzstore_filter_fn_address(value unit) {
  (void)unit;
  return caml_copy_nativeint((intnat)tzstore_filter_fn);
}

/* A root holding [closure], as the filter's ctx; free it with
 * tzstore_filter_ctx_free once the library keeps no pointer to it. */
value tzstore_filter_ctx_new(value closure) {
  CAMLparam1(closure);
  value *root = caml_stat_alloc(sizeof(value));
  *root = closure;
  caml_register_generational_global_root(root);
  CAMLreturn(caml_copy_nativeint((intnat)root));
}

value tzstore_filter_ctx_free(value ctx) {
  value *root = (value *)Nativeint_val(ctx);
  caml_remove_generational_global_root(root);
  caml_stat_free(root);
  return Val_unit;
}
