(* Tests of tzstore.lwt: concurrent Lwt promises store blocks durably (real
   fsyncs), add and flush index entries, run a merge, read, and commit kv
   batches, while a ticker promise must keep ticking; the same stores made
   with the synchronous API inside Lwt starve the ticker, which shows the
   test tells the two apart. Every result is checked. *)

open Lwt.Syntax
module L = Tzstore_lwt
module Error = Tzstore.Error

open Util

let fresh_dir =
  let n = ref 0 in
  fun what ->
    incr n;
    let d =
      Filename.concat (Filename.get_temp_dir_name ())
        (Printf.sprintf "tzstore-lwt-%d-%d-%s" (Unix.getpid ()) !n what)
    in
    d

let hash_of n = String.init 32 (fun i -> Char.chr (if i < 3 then (n lsr (8 * i)) land 255 else (n + i) land 255))

let block_of n =
  {
    Tzstore.Block.hash = hash_of n;
    level = Int32.of_int n;
    predecessor = hash_of (max 0 (n - 1));
    contents = Printf.sprintf "block %d" n;
    metadata = Some (String.make 200 (Char.chr (n land 255)));
  }

(* Ticks every millisecond until [stop] is set. *)
let ticker ticks stop =
  let rec go () =
    if !stop then Lwt.return_unit
    else
      let* () = Lwt_unix.sleep 0.001 in
      incr ticks;
      go ()
  in
  go ()

let blocks = 400

(* The stores, merges and reads, all through tzstore.lwt, concurrently. *)
let work root =
  let* bs =
    L.Block_store.open_ ~history_mode:L.Block_store.Archive ~index_log_size:100
      (Filename.concat root "blocks")
  in
  let bs = ok "open block store" bs in
  let* ix = L.Index.open_ ~key_size:8 ~value_size:8 (Filename.concat root "index") in
  let ix = ok "open index" ix in
  Unix.mkdir (Filename.concat root "kv") 0o755;
  let* kv = L.Kv.open_ (Filename.concat root "kv") in
  let kv = ok "open kv" kv in
  let stored = ref (-1) in
  let chain =
    let rec go i =
      if i = blocks then Lwt.return_unit
      else
        let* r = L.Block_store.store bs (block_of i) in
        ok "store" r;
        stored := i;
        if i = 300 then (
          let* r = L.Block_store.merge bs ~head:(hash_of 300) ~chunk_ends:[ 99l; 199l ] in
          ok "merge" r;
          go (i + 1))
        else go (i + 1)
    in
    go 0
  in
  let index =
    let rec go i =
      if i = 300 then Lwt.return_unit
      else
        let k = Printf.sprintf "%08d" i in
        let* r = L.Index.add ~flush:(i mod 10 = 9) ix k (String.make 8 'v') in
        ok "index add" r;
        go (i + 1)
    in
    go 0
  in
  let reader =
    let rec go n =
      if n = 0 then Lwt.return_unit
      else
        let seen = !stored in
        if seen < 0 then
          let* () = Lwt.pause () in
          go n
        else
          let* r = L.Block_store.read bs (hash_of seen) in
          check "a stored block reads back" (ok "read" r = Some (block_of seen));
          go (n - 1)
    in
    go 200
  in
  let kv_batches =
    let rec go i =
      if i = 50 then Lwt.return_unit
      else
        let* r =
          L.Kv.batch kv (fun b -> Tzstore.Kv.Batch.set b (Printf.sprintf "k/%d" i) (string_of_int i))
        in
        ok "batch" r;
        go (i + 1)
    in
    go 0
  in
  let* () = Lwt.join [ chain; index; reader; kv_batches ] in
  let* r = L.Block_store.await_merge bs in
  ok "await merge" r;
  let* r = L.Block_store.read_by_level bs 150l in
  check "a cemented block reads back" (ok "read by level" r = Some (block_of 150));
  (* Borrowed reads: each view read on a pool thread, used here. *)
  let reader = ok "reader" (L.Reader.create ()) in
  let view r = Option.map Tzstore.Block.View.to_block (ok "read view" r) in
  let* r = L.Block_store.read_view reader bs (hash_of 399) in
  check "a floating view" (view r = Some (block_of 399));
  let* r = L.Block_store.read_view ~distance:250 reader bs (hash_of 399) in
  check "a view at a distance" (view r = Some (block_of 149));
  let* r = L.Block_store.read_by_level_view ~metadata:false reader bs 150l in
  check "a cemented view" (view r = Some { (block_of 150) with Tzstore.Block.metadata = None });
  let* r = L.Block_store.read_view reader bs (hash_of 9999) in
  check "a missing view" (r = Ok None);
  (* The same reader lends an indexed file's values, between block reads. *)
  let* f = L.Indexed_file.open_ ~no_fsync:true ~key_size:4 ~header_size:2 (Filename.concat root "values") in
  let f = ok "open indexed file" f in
  let* r = L.Indexed_file.append f "key1" ~header:"h1" "value one" in
  ok "append" r;
  let* r = L.Indexed_file.read_view_with_header reader f "key1" in
  check "a value view"
    (Option.map (fun (h, v) -> (h, L.Indexed_file.value_string v)) (ok "value view" r)
    = Some ("h1", "value one"));
  let* r = L.Block_store.read_view reader bs (hash_of 398) in
  check "a block view after a value view" (view r = Some (block_of 398));
  let* r = L.Indexed_file.read_view reader f "key1" in
  check "a value view after a block view"
    (Option.map L.Indexed_file.value_string (ok "value view" r) = Some "value one");
  let* r = L.Indexed_file.read_view reader f "key2" in
  check "a missing value view" (r = Ok None);
  let* () = L.Indexed_file.close f in
  let* () = L.Reader.release reader in
  let* () = L.Reader.close reader in
  let* r = L.Index.find ix "00000299" in
  check "the last index binding" (ok "find" r = Some (String.make 8 'v'));
  let* r = L.Kv.get kv "k/49" in
  check "the last batch" (ok "get" r = Some "49");
  let* r = L.Block_store.check bs in
  ok "check" r;
  let* () = L.Block_store.close bs in
  let* () = L.Index.close ix in
  L.Kv.close kv

(* The same kind of work with the synchronous API called from Lwt: nothing
   yields to the scheduler while it runs. *)
let direct root =
  let bs =
    ok "open" (Tzstore.Block_store.open_ ~history_mode:Tzstore.Block_store.Archive (Filename.concat root "direct"))
  in
  for i = 0 to 99 do
    ok "store" (Tzstore.Block_store.store bs (block_of i))
  done;
  Tzstore.Block_store.close bs

let rm_rf d = ignore (Sys.command (Printf.sprintf "rm -rf %s" (Filename.quote d)))

let () =
  L.init ~min:2 ~max:4;
  let root = fresh_dir "root" in
  Unix.mkdir root 0o755;
  Lwt_main.run
    (let ticks = ref 0 and stop = ref false in
     let t = ticker ticks stop in
     let* () = work root in
     let during = !ticks in
     (* The same ticker, through synchronous calls. *)
     let before = !ticks in
     direct root;
     let direct_ticks = !ticks - before in
     stop := true;
     let* () = t in
     Printf.printf "ticks while tzstore.lwt stored, merged and read: %d; during synchronous stores: %d\n"
       during direct_ticks;
     check "the scheduler keeps running while stores fsync" (during >= 10);
     check "synchronous calls starve it (the test can tell)" (direct_ticks = 0);
     Lwt.return_unit);
  rm_rf root;
  finish "tzstore.lwt"
