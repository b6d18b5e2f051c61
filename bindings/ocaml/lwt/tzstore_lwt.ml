(** The tzstore stores for Lwt programs (Octez runs in Lwt, where a blocking
    fsync would freeze the scheduler).

    Each module mirrors the synchronous one of {!Tzstore} with the same
    handle type and the same arguments; every call that may block (file
    I/O, fsync, waiting for a merge or a GC, close) returns its result as an
    [('a, Tzstore.Error.t) result Lwt.t] and runs in {!Lwt_preemptive}'s
    pool of system threads, off the scheduler's thread. The C library
    releases the OCaml runtime lock around each call, so the pool's threads
    and the scheduler run at the same time. Size the pool with
    {!init} (Lwt's default is at most 4 threads).

    Functions that take a callback ([fold], [iter], [Indexed_file.gc]'s
    [keep], [Kv.batch]'s body) run it on the pool's thread: it must not use
    Lwt, only the synchronous {!Tzstore} API (for [Kv.batch], the
    [Tzstore.Kv.Batch] functions). GC filters ([Index.filter],
    [Index.gc], [Indexed_file.gc_filter]) run on a library thread or the
    pool's, under the same rule.

    Pure accessors that never block ([Index.key_size], ...) are the
    synchronous ones, re-exported. *)

module Error = Tzstore.Error
module Block = Tzstore.Block

(** [init ~min ~max] sizes the thread pool that runs the blocking calls
    ({!Lwt_preemptive.init}). Calls beyond [max] wait for a free thread. *)
let init = Pool.init

let detach = Pool.detach

(** Octez's layer-2 store functors ([src/lib_layer2_store/indexed_store.mli]). *)
module Indexed_store = Indexed_store

(** The kv store with mirage-kv's [Mirage_kv.RW] shape. *)
module Kv_rw = Kv_rw

(** [open Tzstore_lwt.Octez]: the block stores with the names, labels and
    result shapes of Octez's
    [Floating_block_store], [Cemented_block_store] and [Block_store]
    ([src/lib_store/unix/]), covering what the C API offers (genesis,
    savepoint, caboose, merges preserving [max_op_ttl] blocks, merge
    status, history-mode switches, read-only [sync], resulting context
    hashes, streamed [cement_blocks] over a chunk iterator and
    [cement_blocks_metadata]). [fold_left_s], [iter_s],
    [iter_cemented_file] and [cement_blocks]' reading sequence take Lwt
    functions or promises, run on the scheduler's thread one block at a
    time while the store is walked or written on a pool thread. A block is
    addressed as in Octez, [Block (hash, distance)]. *)
module Octez = struct
  module Floating_block_store = Octez_block_store.Floating_block_store
  module Cemented_block_store = Octez_block_store.Cemented_block_store
  module Block_store = Octez_block_store.Block_store
  module Indexed_store = Indexed_store
end

(** Readers of borrowed blocks and values ({!Tzstore.Reader}) for the
    [read_view] calls below (one reader serves both: a read of either ends
    the previous views). Such a read runs on a pool thread and its view is then
    used on the scheduler's thread: a reader may move between threads, as
    long as one call at a time uses it. The views end at the reader's next
    read, {!release} or {!close} (see {!Tzstore.Block.View}): let one
    promise at a time read through a reader, and copy what must outlive
    its next read ([Tzstore.Block.View.to_block]). *)
module Reader = struct
  module S = Tzstore.Reader

  type t = S.t

  (** Never waits: answered on the calling thread. *)
  let create = S.create

  (* Releasing or freeing may unmap and close a retired file. *)
  let release t = detach (fun () -> S.release t)
  let close t = detach (fun () -> S.close t)
end

module Singleton = struct
  module S = Tzstore.Singleton

  type t = S.t

  let open_ ?readonly ?no_fsync dir = detach (fun () -> S.open_ ?readonly ?no_fsync dir)
  let read t = detach (fun () -> S.read t)
  let write t v = detach (fun () -> S.write t v)
  let delete t = detach (fun () -> S.delete t)
  let sync t = detach (fun () -> S.sync t)
  let close t = detach (fun () -> S.close t)
end

module Index = struct
  module S = Tzstore.Index

  type t = S.t

  let open_ ?readonly ?no_fsync ?removable ?log_size ~key_size ~value_size dir =
    detach (fun () -> S.open_ ?readonly ?no_fsync ?removable ?log_size ~key_size ~value_size dir)

  let key_size = S.key_size
  let value_size = S.value_size
  let mem t k = detach (fun () -> S.mem t k)
  let find t k = detach (fun () -> S.find t k)
  let add ?flush t k v = detach (fun () -> S.add ?flush t k v)
  let remove ?flush t k = detach (fun () -> S.remove ?flush t k)
  let flush t = detach (fun () -> S.flush t)
  let sync t = detach (fun () -> S.sync t)
  let await_merge t = detach (fun () -> S.await_merge t)
  let length t = detach (fun () -> S.length t)
  let fold t ~init ~f = detach (fun () -> S.fold t ~init ~f)
  let iter t f = detach (fun () -> S.iter t f)

  (** The filters of [filter] and [gc] run on a library thread or the
      pool's (see {!Tzstore.Index.filter}): synchronous code only. *)
  let filter t f = detach (fun () -> S.filter t f)

  let gc ?wait t f = detach (fun () -> S.gc ?wait t f)
  let await_gc t = detach (fun () -> S.await_gc t)
  let is_gc_finished = S.is_gc_finished
  let cancel_gc t = detach (fun () -> S.cancel_gc t)
  let clear t = detach (fun () -> S.clear t)
  let try_merge t = detach (fun () -> S.try_merge t)
  let is_merging = S.is_merging
  let close t = detach (fun () -> S.close t)
end

module Floating = struct
  module S = Tzstore.Floating

  type t = S.t
  type kind = S.kind = Ro | Rw | Ro_tmp | Rw_tmp | Restore

  let open_ ?readonly ?no_fsync ~kind dir = detach (fun () -> S.open_ ?readonly ?no_fsync ~kind dir)
  let append ?flush ?context t b preds = detach (fun () -> S.append ?flush ?context t b preds)
  let resulting_context_hash t h = detach (fun () -> S.resulting_context_hash t h)
  let flush t = detach (fun () -> S.flush t)
  let sync t = detach (fun () -> S.sync t)
  let mem t h = detach (fun () -> S.mem t h)
  let find_predecessors t h = detach (fun () -> S.find_predecessors t h)
  let read_block t h = detach (fun () -> S.read_block t h)
  let read_block_and_predecessors t h = detach (fun () -> S.read_block_and_predecessors t h)
  let read_view r t h = detach (fun () -> S.read_view r t h)
  let length t = detach (fun () -> S.length t)
  let fold t ~init ~f = detach (fun () -> S.fold t ~init ~f)
  let iter t f = detach (fun () -> S.iter t f)
  let close t = detach (fun () -> S.close t)
end

module Block_store = struct
  module S = Tzstore.Block_store

  type t = S.t
  type history_mode = S.history_mode = Archive | Full | Rolling

  let open_ ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size
      ?zstd_level dir =
    detach (fun () ->
        S.open_ ?readonly ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size
          ?zstd_level dir)

  let create ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level ~genesis dir =
    detach (fun () ->
        S.create ?no_fsync ?history_mode ?history_offset ?workers ?index_log_size ?zstd_level ~genesis
          dir)

  let load ?readonly ?no_fsync ?workers ?index_log_size ?zstd_level ~genesis_hash dir =
    detach (fun () ->
        S.load ?readonly ?no_fsync ?workers ?index_log_size ?zstd_level ~genesis_hash dir)

  let store ?flush ?context t b = detach (fun () -> S.store ?flush ?context t b)
  let resulting_context_hash t h = detach (fun () -> S.resulting_context_hash t h)
  let flush t = detach (fun () -> S.flush t)
  let mem t h = detach (fun () -> S.mem t h)
  let read ?distance ?metadata t h = detach (fun () -> S.read ?distance ?metadata t h)
  let read_by_level ?metadata t l = detach (fun () -> S.read_by_level ?metadata t l)
  let read_view ?distance ?metadata r t h = detach (fun () -> S.read_view ?distance ?metadata r t h)
  let read_by_level_view ?metadata r t l = detach (fun () -> S.read_by_level_view ?metadata r t l)
  let merge ?max_op_ttl t ~head ~chunk_ends = detach (fun () -> S.merge ?max_op_ttl t ~head ~chunk_ends)

  type descr = S.descr
  type merge_status = S.merge_status = Not_running | Running | Merge_failed of Error.t

  let genesis t = detach (fun () -> S.genesis t)
  let savepoint t = detach (fun () -> S.savepoint t)
  let caboose t = detach (fun () -> S.caboose t)
  let write_savepoint t d = detach (fun () -> S.write_savepoint t d)
  let write_caboose t d = detach (fun () -> S.write_caboose t d)

  (** Never waits: answered on the calling thread. *)
  let merge_status = S.merge_status

  let history t = detach (fun () -> S.history t)

  let switch_history_mode ?max_op_ttl t ~head mode ~offset =
    detach (fun () -> S.switch_history_mode ?max_op_ttl t ~head mode ~offset)

  let sync t = detach (fun () -> S.sync t)
  let await_merge t = detach (fun () -> S.await_merge t)
  let stats t = detach (fun () -> S.stats t)
  let check ?repair t = detach (fun () -> S.check ?repair t)
  let close t = detach (fun () -> S.close t)
end

module Cemented = struct
  module S = Tzstore.Cemented

  type t = S.t
  type chunk = S.chunk = { start_level : int32; end_level : int32 }

  let open_ ?readonly ?no_fsync ?log_size dir =
    detach (fun () -> S.open_ ?readonly ?no_fsync ?log_size dir)

  let lowest_level t = detach (fun () -> S.lowest_level t)
  let highest_level t = detach (fun () -> S.highest_level t)
  let level_of t h = detach (fun () -> S.level_of t h)
  let hash_of t l = detach (fun () -> S.hash_of t l)
  let read_by_level ?metadata t l = detach (fun () -> S.read_by_level ?metadata t l)
  let read_by_hash ?metadata t h = detach (fun () -> S.read_by_hash ?metadata t h)
  let read_view_by_level ?metadata r t l = detach (fun () -> S.read_view_by_level ?metadata r t l)
  let read_metadata t l = detach (fun () -> S.read_metadata t l)

  let cement ?write_metadata ?check_consistency t blocks =
    detach (fun () -> S.cement ?write_metadata ?check_consistency t blocks)

  (** A writer's calls run on the pool's threads, one at a time (see
      {!Tzstore.Cemented.Chunk_writer}). *)
  module Chunk_writer = struct
    module W = S.Chunk_writer

    type t = W.t

    let push ?context t b = detach (fun () -> W.push ?context t b)
    let commit t = detach (fun () -> W.commit t)
    let abort t = detach (fun () -> W.abort t)
  end

  let begin_chunk ?write_metadata ?check_consistency t chunk =
    detach (fun () -> S.begin_chunk ?write_metadata ?check_consistency t chunk)

  let cement_metadata t blocks = detach (fun () -> S.cement_metadata t blocks)
  let resulting_context_hash t h = detach (fun () -> S.resulting_context_hash t h)
  let chunks t = detach (fun () -> S.chunks t)
  let metadata_chunks t = detach (fun () -> S.metadata_chunks t)
  let find_chunk t l = detach (fun () -> S.find_chunk t l)
  let gc t ~mode ~offset = detach (fun () -> S.gc t ~mode ~offset)
  let check_consistency ?genesis t = detach (fun () -> S.check_consistency ?genesis t)
  let fold ?metadata t c ~init ~f = detach (fun () -> S.fold ?metadata t c ~init ~f)
  let iter ?metadata t c f = detach (fun () -> S.iter ?metadata t c f)
  let set_zstd_level t l = detach (fun () -> S.set_zstd_level t l)
  let sync t = detach (fun () -> S.sync t)
  let close t = detach (fun () -> S.close t)
end

module Indexed_file = struct
  module S = Tzstore.Indexed_file

  type t = S.t

  let open_ ?readonly ?no_fsync ?header_in_value ?log_size ~key_size ~header_size dir =
    detach (fun () ->
        S.open_ ?readonly ?no_fsync ?header_in_value ?log_size ~key_size ~header_size dir)

  let header_size = S.header_size
  let mem t k = detach (fun () -> S.mem t k)
  let header t k = detach (fun () -> S.header t k)
  let read t k = detach (fun () -> S.read t k)
  let read_with_header t k = detach (fun () -> S.read_with_header t k)

  (** Borrowed, as {!Tzstore.Indexed_file.read_view}: the value lent by
      the reader until its next read (of a value or a block), release or
      close; see {!Reader}. *)
  let read_view r t k = detach (fun () -> S.read_view r t k)

  let read_view_with_header r t k = detach (fun () -> S.read_view_with_header r t k)
  let value_string = S.value_string
  let append ?flush t k ~header v = detach (fun () -> S.append ?flush t k ~header v)
  let append_value ?flush t k v = detach (fun () -> S.append_value ?flush t k v)
  let flush t = detach (fun () -> S.flush t)
  let sync t = detach (fun () -> S.sync t)
  let gc t ~keep = detach (fun () -> S.gc t ~keep)

  (** [f] runs on a library thread or the pool's (see
      {!Tzstore.Indexed_file.gc_filter}): synchronous code only. *)
  let gc_filter ?wait t f = detach (fun () -> S.gc_filter ?wait t f)

  let await_gc t = detach (fun () -> S.await_gc t)
  let is_gc_finished = S.is_gc_finished
  let cancel_gc t = detach (fun () -> S.cancel_gc t)
  let close t = detach (fun () -> S.close t)
end

module Kv = struct
  module S = Tzstore.Kv

  type t = S.t
  type kind = S.kind

  let open_ ?readonly ?no_fsync dir = detach (fun () -> S.open_ ?readonly ?no_fsync dir)
  let exists t k = detach (fun () -> S.exists t k)
  let get t k = detach (fun () -> S.get t k)
  let get_partial t k ~offset ~length = detach (fun () -> S.get_partial t k ~offset ~length)
  let size t k = detach (fun () -> S.size t k)
  let list t k = detach (fun () -> S.list t k)
  let last_modified t k = detach (fun () -> S.last_modified t k)
  let digest t k = detach (fun () -> S.digest t k)
  let set t k v = detach (fun () -> S.set t k v)
  let set_partial t k ~offset v = detach (fun () -> S.set_partial t k ~offset v)
  let remove t k = detach (fun () -> S.remove t k)
  let rename t ~source ~dest = detach (fun () -> S.rename t ~source ~dest)
  let allocate t k n = detach (fun () -> S.allocate t k n)

  (** [batch t f] runs [f] on a pool thread inside a batch (see
      {!Tzstore.Kv.batch}): [f] uses [Tzstore.Kv.Batch], not Lwt. *)
  let batch ?retries t f = detach (fun () -> S.batch ?retries t f)

  let close t = detach (fun () -> S.close t)
end
