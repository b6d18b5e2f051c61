(* The C API of include/tzstore.h as ctypes values, declared once: the
   structs (Types) and every function the binding calls (Functions).
   gen/gen_c.ml turns Functions into C stubs (Cstubs) compiled against the
   header, and emits beside them a check of each declaration against the
   header's prototype and of each struct field against the header's
   layout: a C signature that drifts from what is written here fails the
   build instead of corrupting memory at run time.

   Types are therefore spelled as the header spells them (const included):
   [typedef] gives a ctypes type the header's C name. Byte buffers are
   [char] on the OCaml side, to read and write strings, and [uint8_t] in C:
   the same representation under two names. *)

open Ctypes

(* A type's C name: a sealed struct prints as its whole definition. *)
let c_name t =
  let s = string_of_typ t in
  match String.index_opt s '{' with Some i -> String.trim (String.sub s 0 i) | None -> s

let const_ptr t = typedef (ptr t) ("const " ^ c_name t ^ " *")

(* OCaml strings copied into C memory (NUL-terminated), for paths and kv
   keys, and for byte arguments whose length is passed beside them. *)
let c_string = typedef string "const char *"
let bytes_in = typedef string "const uint8_t *"
let bytes_in_opt = typedef string_opt "const uint8_t *"
let bytes_out = typedef (ptr char) "uint8_t *"

(* Bytes a tzs_reader lends (tzs_view.ptr): [char] as above, to make
   bigarrays of them without a copy. *)
let bytes_lent = typedef (ptr char) "const uint8_t *"

module Types = struct
  (* Every field and struct declared here, for the generated layout
     checks: (C struct, field, C type of the field, its offset). *)
  let fields : (string * string * string * (unit -> int)) list ref = ref []
  let structs : (string * (unit -> int)) list ref = ref []

  let field s name t =
    let f = field s name t in
    fields := (c_name s, name, c_name t, fun () -> offsetof f) :: !fields;
    f

  let seal s =
    seal s;
    structs := (c_name s, fun () -> sizeof s) :: !structs

  type error_s

  let error : error_s structure typ = structure "tzs_error"
  let error_out = ptr (ptr error)
  let status = typedef uint32_t "tzs_status"

  type bytes_s

  let tzs_bytes : bytes_s structure typ = structure "tzs_bytes"
  let bytes_ptr = field tzs_bytes "ptr" bytes_out
  let bytes_len = field tzs_bytes "len" size_t
  let () = seal tzs_bytes

  type block_s

  let tzs_block : block_s structure typ = structure "tzs_block"
  let block_hash = field tzs_block "hash" (array 32 uint8_t)
  let block_level = field tzs_block "level" int32_t
  let block_predecessor = field tzs_block "predecessor" (array 32 uint8_t)
  let block_contents = field tzs_block "contents" tzs_bytes
  let block_has_metadata = field tzs_block "has_metadata" bool
  let block_metadata = field tzs_block "metadata" tzs_bytes
  let () = seal tzs_block

  (* A borrowed block read: contents and metadata lent by a tzs_reader. *)
  type view_s

  let tzs_view : view_s structure typ = structure "tzs_view"
  let view_ptr = field tzs_view "ptr" bytes_lent
  let view_len = field tzs_view "len" size_t
  let () = seal tzs_view

  type block_view_s

  let tzs_block_view : block_view_s structure typ = structure "tzs_block_view"
  let view_hash = field tzs_block_view "hash" (array 32 uint8_t)
  let view_level = field tzs_block_view "level" int32_t
  let view_predecessor = field tzs_block_view "predecessor" (array 32 uint8_t)
  let view_contents = field tzs_block_view "contents" tzs_view
  let view_has_metadata = field tzs_block_view "has_metadata" bool
  let view_metadata = field tzs_block_view "metadata" tzs_view
  let () = seal tzs_block_view

  type chunk_s

  let tzs_chunk : chunk_s structure typ = structure "tzs_chunk"
  let chunk_start = field tzs_chunk "start_level" int32_t
  let chunk_end = field tzs_chunk "end_level" int32_t
  let () = seal tzs_chunk

  type options_s

  let tzs_options : options_s structure typ = structure "tzs_block_store_options"
  let o_flags = field tzs_options "flags" uint32_t
  let o_history_mode = field tzs_options "history_mode" uint32_t
  let o_history_offset = field tzs_options "history_offset" uint32_t
  let o_workers = field tzs_options "workers" uint32_t
  let o_index_log_size = field tzs_options "index_log_size" uint64_t
  let o_zstd_level = field tzs_options "zstd_level" int32_t
  let () = seal tzs_options

  type stats_s

  let tzs_stats : stats_s structure typ = structure "tzs_block_store_stats"
  let s_cemented_lowest = field tzs_stats "cemented_lowest" int32_t
  let s_cemented_highest = field tzs_stats "cemented_highest" int32_t
  let s_cemented_blocks = field tzs_stats "cemented_blocks" uint64_t
  let s_floating_blocks = field tzs_stats "floating_blocks" uint64_t
  let s_bytes_on_disk = field tzs_stats "bytes_on_disk" uint64_t
  let s_merges_done = field tzs_stats "merges_done" uint64_t
  let s_last_merge_ms = field tzs_stats "last_merge_ms" uint64_t
  let s_merging = field tzs_stats "merging" bool
  let () = seal tzs_stats

  type descr_s

  let tzs_descr : descr_s structure typ = structure "tzs_block_descr"
  let descr_hash = field tzs_descr "hash" (array 32 uint8_t)
  let descr_level = field tzs_descr "level" int32_t
  let () = seal tzs_descr
  let merge_state = typedef uint32_t "tzs_merge_state"
  let history_mode = typedef uint32_t "tzs_history_mode"

  (* Opaque handles. *)
  type singleton_s
  type index_s
  type index_iter_s
  type indexed_file_s
  type floating_s
  type floating_iter_s
  type cemented_s
  type cemented_iter_s
  type chunk_writer_s
  type chunk_list_s
  type block_store_s
  type kv_s
  type kv_batch_s
  type kv_entries_s
  type reader_s

  let singleton : singleton_s structure typ = structure "tzs_singleton"
  let index : index_s structure typ = structure "tzs_index"
  let index_iter : index_iter_s structure typ = structure "tzs_index_iter"
  let indexed_file : indexed_file_s structure typ = structure "tzs_indexed_file"
  let floating : floating_s structure typ = structure "tzs_floating"
  let floating_iter : floating_iter_s structure typ = structure "tzs_floating_iter"
  let cemented : cemented_s structure typ = structure "tzs_cemented"
  let cemented_iter : cemented_iter_s structure typ = structure "tzs_cemented_iter"
  let chunk_writer : chunk_writer_s structure typ = structure "tzs_chunk_writer"
  let chunk_list : chunk_list_s structure typ = structure "tzs_chunk_list"
  let block_store : block_store_s structure typ = structure "tzs_block_store"
  let kv : kv_s structure typ = structure "tzs_kv"
  let kv_batch : kv_batch_s structure typ = structure "tzs_kv_batch"
  let kv_entries : kv_entries_s structure typ = structure "tzs_kv_entries"
  let reader : reader_s structure typ = structure "tzs_reader"

  (* tzs_indexed_file_keep_fn. The library calls it on the thread of
     tzs_indexed_file_gc, which has released the runtime lock: the
     callback takes the lock back while the OCaml function runs. *)
  let keep_fn =
    Foreign.funptr ~runtime_lock:true (const_ptr uint8_t @-> size_t @-> ptr void @-> returning bool)

  (* tzs_filter_fn: the binding passes the C function of filter_stubs.c
     (see gc_filter.ml). *)
  let filter_fn =
    static_funptr
      (ptr void @-> const_ptr uint8_t @-> size_t @-> const_ptr uint8_t @-> size_t @-> returning bool)
end

open Types

(* Each function is declared through one of two stub generators:
   - [Blocking] (Cstubs.unlocked): the stub releases the runtime lock while
     the library works, so other OCaml threads run while it reads, writes,
     fsyncs or waits for a lock or a merge. Its pointer arguments must
     therefore be C memory: ctypes' [allocate], [make] and the string types
     above are.
   - [Quick] (Cstubs.sequential): the stub keeps the lock, for calls that
     only read or free memory the library allocated and never wait;
     releasing and retaking the lock costs about 60 ns a call
     (BENCHMARKS.md, "OCaml binding"), more than these calls. *)
module Functions (Blocking : Ctypes.FOREIGN) (Quick : Ctypes.FOREIGN) = struct
  open Blocking

  let err = error_out
  let st = returning status
  let version = Quick.(foreign "tzs_version" (void @-> returning c_string))
  let error_message = Quick.(foreign "tzs_error_message" (const_ptr error @-> returning c_string))
  let error_code = Quick.(foreign "tzs_error_code" (const_ptr error @-> returning status))
  let error_free = Quick.(foreign "tzs_error_free" (ptr error @-> returning void))
  let bytes_free = Quick.(foreign "tzs_bytes_free" (ptr tzs_bytes @-> returning void))
  let block_free = Quick.(foreign "tzs_block_free" (ptr tzs_block @-> returning void))

  (* Borrowed reads (of blocks and indexed-file values): a reader holds
     what its last view points into.
     [release] and [free] may drop the last reference to a file a merge
     retired or a GC deleted (an unmap and the final close, which frees
     its disk space): blocking, as the stores' closes. *)
  module Reader = struct
    let r = ptr reader
    let new_ = foreign "tzs_reader_new" (ptr r @-> err @-> st)
    let release = foreign "tzs_reader_release" (r @-> returning void)
    let free = foreign "tzs_reader_free" (r @-> returning void)
  end

  let block_view = ptr tzs_block_view

  module Singleton = struct
    let h = ptr singleton
    let open_ = foreign "tzs_singleton_open" (c_string @-> uint32_t @-> ptr h @-> err @-> st)
    let read = foreign "tzs_singleton_read" (h @-> ptr tzs_bytes @-> err @-> st)
    let write = foreign "tzs_singleton_write" (h @-> bytes_in @-> size_t @-> err @-> st)
    let delete = foreign "tzs_singleton_delete" (h @-> err @-> st)
    let sync = foreign "tzs_singleton_sync" (h @-> err @-> st)
    let close = foreign "tzs_singleton_close" (h @-> returning void)
  end

  module Index = struct
    let h = ptr index
    let it = ptr index_iter

    let open_ =
      foreign "tzs_index_open"
        (c_string @-> uint32_t @-> uint32_t @-> uint32_t @-> uint64_t @-> ptr h @-> err @-> st)

    let mem = foreign "tzs_index_mem" (h @-> bytes_in @-> size_t @-> err @-> st)

    let find =
      foreign "tzs_index_find" (h @-> bytes_in @-> size_t @-> bytes_out @-> size_t @-> err @-> st)

    let add =
      foreign "tzs_index_add"
        (h @-> bytes_in @-> size_t @-> bytes_in @-> size_t @-> bool @-> err @-> st)

    let remove = foreign "tzs_index_remove" (h @-> bytes_in @-> size_t @-> bool @-> err @-> st)
    let flush = foreign "tzs_index_flush" (h @-> err @-> st)
    let sync = foreign "tzs_index_sync" (h @-> err @-> st)
    let await_merge = foreign "tzs_index_await_merge" (h @-> err @-> st)
    let filter = foreign "tzs_index_filter" (h @-> filter_fn @-> ptr void @-> err @-> st)

    let gc =
      foreign "tzs_index_gc" (h @-> filter_fn @-> ptr void @-> bool @-> ptr bool @-> err @-> st)

    let await_gc = foreign "tzs_index_await_gc" (h @-> err @-> st)
    let is_gc_finished = Quick.(foreign "tzs_index_is_gc_finished" (h @-> returning bool))
    let cancel_gc = foreign "tzs_index_cancel_gc" (h @-> ptr bool @-> err @-> st)
    let clear = foreign "tzs_index_clear" (h @-> err @-> st)
    let try_merge = foreign "tzs_index_try_merge" (h @-> ptr bool @-> err @-> st)
    let is_merging = Quick.(foreign "tzs_index_is_merging" (h @-> returning bool))
    let iter_new = foreign "tzs_index_iter_new" (h @-> ptr it @-> err @-> st)

    let iter_next =
      foreign "tzs_index_iter_next"
        (it @-> bytes_out @-> size_t @-> bytes_out @-> size_t @-> err @-> st)

    let iter_free = foreign "tzs_index_iter_free" (it @-> returning void)
    let len = foreign "tzs_index_len" (h @-> returning uint64_t)
    let close = foreign "tzs_index_close" (h @-> returning void)
  end

  module Indexed_file = struct
    let h = ptr indexed_file

    let open_ =
      foreign "tzs_indexed_file_open"
        (c_string @-> uint32_t @-> uint32_t @-> uint32_t @-> uint64_t @-> ptr h @-> err @-> st)

    let mem = foreign "tzs_indexed_file_mem" (h @-> bytes_in @-> size_t @-> err @-> st)

    let header =
      foreign "tzs_indexed_file_header"
        (h @-> bytes_in @-> size_t @-> bytes_out @-> size_t @-> err @-> st)

    let read =
      foreign "tzs_indexed_file_read"
        (h @-> bytes_in @-> size_t @-> ptr tzs_bytes @-> bytes_out @-> size_t @-> err @-> st)

    (* Borrowed: the value (and, unless [header_out] is NULL, the header)
       lent by the reader, as the block stores' [read_view]. *)
    let read_view =
      foreign "tzs_indexed_file_read_view"
        (h @-> Reader.r @-> bytes_in @-> size_t @-> ptr tzs_view @-> ptr tzs_view @-> err @-> st)

    let append =
      foreign "tzs_indexed_file_append"
        (h @-> bytes_in @-> size_t @-> bytes_in_opt @-> size_t @-> bytes_in @-> size_t @-> bool
       @-> err @-> st)

    let flush = foreign "tzs_indexed_file_flush" (h @-> err @-> st)
    let sync = foreign "tzs_indexed_file_sync" (h @-> err @-> st)
    let gc = foreign "tzs_indexed_file_gc" (h @-> keep_fn @-> ptr void @-> err @-> st)
    let gc_filter =
      foreign "tzs_indexed_file_gc_filter"
        (h @-> filter_fn @-> ptr void @-> bool @-> ptr bool @-> err @-> st)

    let is_gc_finished = Quick.(foreign "tzs_indexed_file_is_gc_finished" (h @-> returning bool))
    let cancel_gc = foreign "tzs_indexed_file_cancel_gc" (h @-> ptr bool @-> err @-> st)
    let await_gc = foreign "tzs_indexed_file_await_gc" (h @-> err @-> st)
    let close = foreign "tzs_indexed_file_close" (h @-> returning void)
  end

  module Floating = struct
    let h = ptr floating
    let it = ptr floating_iter
    let block = ptr tzs_block
    let preds = ptr tzs_bytes

    let open_ =
      foreign "tzs_floating_open" (c_string @-> uint32_t @-> uint32_t @-> ptr h @-> err @-> st)

    let append =
      foreign "tzs_floating_append"
        (h @-> const_ptr tzs_block @-> bytes_in @-> size_t @-> bool @-> err @-> st)

    let append_with_context =
      foreign "tzs_floating_append_with_context"
        (h @-> const_ptr tzs_block @-> bytes_in @-> bytes_in @-> size_t @-> bool @-> err @-> st)

    let resulting_context_hash =
      foreign "tzs_floating_resulting_context_hash" (h @-> bytes_in @-> bytes_out @-> err @-> st)

    let flush = foreign "tzs_floating_flush" (h @-> err @-> st)
    let sync = foreign "tzs_floating_sync" (h @-> err @-> st)
    let mem = foreign "tzs_floating_mem" (h @-> bytes_in @-> err @-> st)

    let find_predecessors =
      foreign "tzs_floating_find_predecessors" (h @-> bytes_in @-> preds @-> err @-> st)

    let read_block = foreign "tzs_floating_read_block" (h @-> bytes_in @-> block @-> err @-> st)

    let read_block_and_predecessors =
      foreign "tzs_floating_read_block_and_predecessors"
        (h @-> bytes_in @-> block @-> preds @-> err @-> st)

    let read_view =
      foreign "tzs_floating_read_view" (h @-> Reader.r @-> bytes_in @-> block_view @-> err @-> st)

    let len = foreign "tzs_floating_len" (h @-> returning uint64_t)
    let iter_new = foreign "tzs_floating_iter_new" (h @-> ptr it @-> err @-> st)
    let iter_next = foreign "tzs_floating_iter_next" (it @-> block @-> preds @-> err @-> st)
    let iter_free = foreign "tzs_floating_iter_free" (it @-> returning void)
    let close = foreign "tzs_floating_close" (h @-> returning void)
  end

  module Cemented = struct
    let h = ptr cemented
    let it = ptr cemented_iter
    let list = ptr chunk_list
    let block = ptr tzs_block

    let open_ =
      foreign "tzs_cemented_open" (c_string @-> uint32_t @-> uint64_t @-> ptr h @-> err @-> st)

    let lowest_level = foreign "tzs_cemented_lowest_level" (h @-> ptr int32_t @-> err @-> st)
    let highest_level = foreign "tzs_cemented_highest_level" (h @-> ptr int32_t @-> err @-> st)

    let level_of =
      foreign "tzs_cemented_level_of" (h @-> bytes_in @-> ptr int32_t @-> err @-> st)

    let hash_of = foreign "tzs_cemented_hash_of" (h @-> int32_t @-> bytes_out @-> err @-> st)

    let read_by_level =
      foreign "tzs_cemented_read_by_level" (h @-> int32_t @-> bool @-> block @-> err @-> st)

    let read_by_hash =
      foreign "tzs_cemented_read_by_hash" (h @-> bytes_in @-> bool @-> block @-> err @-> st)

    let read_view_by_level =
      foreign "tzs_cemented_read_view_by_level"
        (h @-> Reader.r @-> int32_t @-> bool @-> block_view @-> err @-> st)

    let read_metadata =
      foreign "tzs_cemented_read_metadata" (h @-> int32_t @-> ptr tzs_bytes @-> err @-> st)

    let cement =
      foreign "tzs_cemented_cement"
        (h @-> const_ptr tzs_block @-> size_t @-> bool @-> bool @-> err @-> st)

    let resulting_context_hash =
      foreign "tzs_cemented_resulting_context_hash" (h @-> bytes_in @-> bytes_out @-> err @-> st)

    (* Streamed cementing: a writer holds the store's write lock until it
       is committed or aborted, each of which frees it. *)
    let w = ptr chunk_writer

    let begin_chunk =
      foreign "tzs_cemented_begin_chunk"
        (h @-> int32_t @-> int32_t @-> bool @-> bool @-> ptr w @-> err @-> st)

    let writer_push = foreign "tzs_chunk_writer_push" (w @-> const_ptr tzs_block @-> err @-> st)

    let writer_push_with_context =
      foreign "tzs_chunk_writer_push_with_context"
        (w @-> const_ptr tzs_block @-> bytes_in @-> err @-> st)

    let writer_commit = foreign "tzs_chunk_writer_commit" (w @-> ptr tzs_chunk @-> err @-> st)
    let writer_abort = foreign "tzs_chunk_writer_abort" (w @-> returning void)

    let cement_metadata =
      foreign "tzs_cemented_cement_metadata"
        (h @-> const_ptr tzs_block @-> size_t @-> ptr tzs_chunk @-> err @-> st)

    let chunks = foreign "tzs_cemented_chunks" (h @-> ptr list @-> err @-> st)
    let metadata_chunks = foreign "tzs_cemented_metadata_chunks" (h @-> ptr list @-> err @-> st)
    let list_len = Quick.(foreign "tzs_chunk_list_len" (const_ptr chunk_list @-> returning size_t))

    let list_get =
      Quick.(foreign "tzs_chunk_list_get" (const_ptr chunk_list @-> size_t @-> returning tzs_chunk))

    let list_free = Quick.(foreign "tzs_chunk_list_free" (list @-> returning void))

    let find_chunk =
      foreign "tzs_cemented_find_chunk" (h @-> int32_t @-> ptr tzs_chunk @-> err @-> st)

    let gc = foreign "tzs_cemented_gc" (h @-> uint32_t @-> uint32_t @-> err @-> st)

    let check_consistency =
      foreign "tzs_cemented_check_consistency" (h @-> bytes_in_opt @-> err @-> st)

    let iter_new =
      foreign "tzs_cemented_iter_new" (h @-> tzs_chunk @-> bool @-> ptr it @-> err @-> st)

    let iter_next = foreign "tzs_cemented_iter_next" (it @-> block @-> err @-> st)
    let iter_free = foreign "tzs_cemented_iter_free" (it @-> returning void)
    let set_zstd_level = foreign "tzs_cemented_set_zstd_level" (h @-> int32_t @-> err @-> st)
    let sync = foreign "tzs_cemented_sync" (h @-> err @-> st)
    let close = foreign "tzs_cemented_close" (h @-> returning void)
  end

  module Block_store = struct
    let h = ptr block_store
    let block = ptr tzs_block

    let options_default =
      Quick.(foreign "tzs_block_store_options_default" (void @-> returning tzs_options))

    let open_ =
      foreign "tzs_block_store_open" (c_string @-> const_ptr tzs_options @-> ptr h @-> err @-> st)

    let descr = ptr tzs_descr

    let create =
      foreign "tzs_block_store_create"
        (c_string @-> const_ptr tzs_options @-> const_ptr tzs_block @-> ptr h @-> err @-> st)

    let load =
      foreign "tzs_block_store_load"
        (c_string @-> const_ptr tzs_options @-> bytes_in @-> ptr h @-> err @-> st)

    let genesis = foreign "tzs_block_store_genesis" (h @-> descr @-> err @-> st)
    let savepoint = foreign "tzs_block_store_savepoint" (h @-> descr @-> err @-> st)
    let caboose = foreign "tzs_block_store_caboose" (h @-> descr @-> err @-> st)

    let write_savepoint =
      foreign "tzs_block_store_write_savepoint" (h @-> const_ptr tzs_descr @-> err @-> st)

    let write_caboose =
      foreign "tzs_block_store_write_caboose" (h @-> const_ptr tzs_descr @-> err @-> st)

    let merge_preserving =
      foreign "tzs_block_store_merge_preserving"
        (h @-> bytes_in @-> const_ptr int32_t @-> size_t @-> uint32_t @-> err @-> st)

    let merge_status =
      foreign "tzs_block_store_merge_status" (h @-> ptr merge_state @-> err @-> err @-> st)

    let history =
      foreign "tzs_block_store_history" (h @-> ptr history_mode @-> ptr uint32_t @-> err @-> st)

    let switch_history_mode =
      foreign "tzs_block_store_switch_history_mode"
        (h @-> bytes_in @-> history_mode @-> uint32_t @-> uint32_t @-> err @-> st)

    let sync = foreign "tzs_block_store_sync" (h @-> ptr bool @-> err @-> st)

    let store =
      foreign "tzs_block_store_store_with" (h @-> const_ptr tzs_block @-> bool @-> err @-> st)

    let store_with_context =
      foreign "tzs_block_store_store_with_context"
        (h @-> const_ptr tzs_block @-> bytes_in @-> bool @-> err @-> st)

    let resulting_context_hash =
      foreign "tzs_block_store_resulting_context_hash"
        (h @-> bytes_in @-> bytes_out @-> err @-> st)

    let flush = foreign "tzs_block_store_flush" (h @-> err @-> st)
    let mem = foreign "tzs_block_store_mem" (h @-> bytes_in @-> err @-> st)

    let read =
      foreign "tzs_block_store_read"
        (h @-> bytes_in @-> uint32_t @-> bool @-> block @-> err @-> st)

    let read_by_level =
      foreign "tzs_block_store_read_by_level" (h @-> int32_t @-> bool @-> block @-> err @-> st)

    let read_view =
      foreign "tzs_block_store_read_view"
        (h @-> Reader.r @-> bytes_in @-> uint32_t @-> bool @-> block_view @-> err @-> st)

    let read_by_level_view =
      foreign "tzs_block_store_read_by_level_view"
        (h @-> Reader.r @-> int32_t @-> bool @-> block_view @-> err @-> st)

    let merge =
      foreign "tzs_block_store_merge"
        (h @-> bytes_in @-> const_ptr int32_t @-> size_t @-> err @-> st)

    let await_merge = foreign "tzs_block_store_await_merge" (h @-> err @-> st)
    let read_stats = foreign "tzs_block_store_read_stats" (h @-> ptr tzs_stats @-> err @-> st)
    let check = foreign "tzs_block_store_check" (h @-> bool @-> err @-> st)
    let close = foreign "tzs_block_store_close" (h @-> returning void)
  end

  module Kv = struct
    let h = ptr kv
    let b = ptr kv_batch
    let entries = ptr kv_entries
    let bytes = ptr tzs_bytes
    let open_ = foreign "tzs_kv_open" (c_string @-> uint32_t @-> ptr h @-> err @-> st)
    let exists = foreign "tzs_kv_exists" (h @-> c_string @-> ptr uint32_t @-> err @-> st)
    let get = foreign "tzs_kv_get" (h @-> c_string @-> bytes @-> err @-> st)

    let get_partial =
      foreign "tzs_kv_get_partial"
        (h @-> c_string @-> uint64_t @-> uint64_t @-> bytes @-> err @-> st)

    let size = foreign "tzs_kv_size" (h @-> c_string @-> ptr uint64_t @-> err @-> st)
    let list = foreign "tzs_kv_list" (h @-> c_string @-> ptr entries @-> err @-> st)
    let entries_len =
      Quick.(foreign "tzs_kv_entries_len" (const_ptr kv_entries @-> returning size_t))

    let entries_name =
      Quick.(foreign "tzs_kv_entries_name" (const_ptr kv_entries @-> size_t @-> returning c_string))

    let entries_kind =
      Quick.(foreign "tzs_kv_entries_kind" (const_ptr kv_entries @-> size_t @-> returning uint32_t))

    let entries_free = Quick.(foreign "tzs_kv_entries_free" (entries @-> returning void))

    let last_modified =
      foreign "tzs_kv_last_modified"
        (h @-> c_string @-> ptr int64_t @-> ptr uint64_t @-> err @-> st)

    let digest = foreign "tzs_kv_digest" (h @-> c_string @-> bytes_out @-> err @-> st)
    let set = foreign "tzs_kv_set" (h @-> c_string @-> bytes_in @-> size_t @-> err @-> st)

    let set_partial =
      foreign "tzs_kv_set_partial"
        (h @-> c_string @-> uint64_t @-> bytes_in @-> size_t @-> err @-> st)

    let remove = foreign "tzs_kv_remove" (h @-> c_string @-> err @-> st)
    let rename = foreign "tzs_kv_rename" (h @-> c_string @-> c_string @-> err @-> st)
    let allocate = foreign "tzs_kv_allocate" (h @-> c_string @-> uint64_t @-> err @-> st)
    let close = foreign "tzs_kv_close" (h @-> returning void)
    let batch_begin = foreign "tzs_kv_batch_begin" (h @-> ptr b @-> err @-> st)

    let batch_exists =
      foreign "tzs_kv_batch_exists" (b @-> c_string @-> ptr uint32_t @-> err @-> st)

    let batch_get = foreign "tzs_kv_batch_get" (b @-> c_string @-> bytes @-> err @-> st)
    let batch_list = foreign "tzs_kv_batch_list" (b @-> c_string @-> ptr entries @-> err @-> st)

    let batch_set =
      foreign "tzs_kv_batch_set" (b @-> c_string @-> bytes_in @-> size_t @-> err @-> st)

    let batch_remove = foreign "tzs_kv_batch_remove" (b @-> c_string @-> err @-> st)
    let batch_commit = foreign "tzs_kv_batch_commit" (b @-> err @-> st)
    let batch_abort = foreign "tzs_kv_batch_abort" (b @-> returning void)
  end
end
