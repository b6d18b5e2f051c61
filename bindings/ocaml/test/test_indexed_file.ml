(* Tests of Tzstore.Indexed_file: append, header, read (with and without
   header), not found, errors with their messages, the header_in_value
   variant, read-only sync, gc with a keep predicate (and a raising one),
   close. *)

open Tzstore
open Util

(* Key n: 8 bytes holding a NUL byte, n in the last byte. *)
let key_of n = Printf.sprintf "key\000%03d%c" (n mod 1000) (Char.chr (n land 255))
let header_of n = Printf.sprintf "h%04d" n (* 5 bytes *)
let value_of n = Printf.sprintf "value %d%s" n (String.make (n mod 7) 'x')
let n = 60

let test_round_trip () =
  let d = Filename.concat (dir ()) "values" in
  let f = ok "open" (Indexed_file.open_ ~no_fsync:true ~log_size:16 ~key_size:8 ~header_size:5 d) in
  check "header_size" (Indexed_file.header_size f = 5);
  for i = 0 to n - 1 do
    ok "append" (Indexed_file.append ~flush:(i mod 10 = 0) f (key_of i) ~header:(header_of i) (value_of i))
  done;
  ok "replace" (Indexed_file.append f (key_of 3) ~header:(header_of 99) "replaced");
  for i = 0 to n - 1 do
    if i <> 3 then (
      check "mem" (Indexed_file.mem f (key_of i) = Ok true);
      check "header" (Indexed_file.header f (key_of i) = Ok (Some (header_of i)));
      check (Printf.sprintf "read %d" i) (Indexed_file.read f (key_of i) = Ok (Some (value_of i))))
  done;
  check "read_with_header" (Indexed_file.read_with_header f (key_of 3) = Ok (Some (header_of 99, "replaced")));
  ok "empty value" (Indexed_file.append f (key_of n) ~header:(header_of n) "");
  check "empty value reads" (Indexed_file.read f (key_of n) = Ok (Some ""));
  let missing = key_of 200 in
  check "mem missing" (Indexed_file.mem f missing = Ok false);
  check "header missing" (Indexed_file.header f missing = Ok None);
  check "read missing" (Indexed_file.read f missing = Ok None);
  check "read_with_header missing" (Indexed_file.read_with_header f missing = Ok None);
  let msg = expect_error "short key" Error.Invalid_argument (Indexed_file.read f "short") in
  check "message names the key" (contains msg "key");
  let msg =
    expect_error "short header" Error.Invalid_argument (Indexed_file.append f (key_of 1) ~header:"hh" "v")
  in
  check "message names the header" (contains msg "header");
  ignore
    (expect_error "append_value on a store with headers" Error.Invalid_argument
       (Indexed_file.append_value f (key_of 1) "value 1"));
  let msg =
    expect_error "second read-write open" Error.Locked (Indexed_file.open_ ~key_size:8 ~header_size:5 d)
  in
  check "Locked has a message" (msg <> "");
  ignore
    (expect_error "read-only open of a missing store" Error.Not_found
       (Indexed_file.open_ ~readonly:true ~key_size:8 ~header_size:5 (d ^ "-missing")));
  ignore
    (expect_error "key size 0" Error.Invalid_argument
       (Indexed_file.open_ ~key_size:0 ~header_size:5 (d ^ "-bad")));
  ok "flush" (Indexed_file.flush f);
  let ro = ok "open ro" (Indexed_file.open_ ~readonly:true ~key_size:8 ~header_size:5 d) in
  check "read-only reads" (Indexed_file.read ro (key_of 7) = Ok (Some (value_of 7)));
  ignore
    (expect_error "read-only append" Error.Read_only
       (Indexed_file.append ro (key_of 1) ~header:(header_of 1) "v"));
  ignore (expect_error "read-only gc" Error.Read_only (Indexed_file.gc ro ~keep:(fun _ -> true)));
  ok "append 100" (Indexed_file.append f (key_of 100) ~header:(header_of 100) (value_of 100));
  ok "sync" (Indexed_file.sync ro);
  check "read-only sees 100 after sync" (Indexed_file.read ro (key_of 100) = Ok (Some (value_of 100)));
  Indexed_file.close ro;
  (* gc keeps the even keys; a value appended afterwards stays. *)
  let calls = ref 0 in
  ok "gc"
    (Indexed_file.gc f ~keep:(fun k ->
         incr calls;
         Char.code k.[7] mod 2 = 0));
  ok "append during gc" (Indexed_file.append f (key_of 101) ~header:(header_of 101) (value_of 101));
  ok "await_gc" (Indexed_file.await_gc f);
  check "keep called once per key" (!calls = n + 2);
  for i = 0 to n - 1 do
    if i <> 3 then
      check (Printf.sprintf "after gc %d" i)
        (Indexed_file.read f (key_of i) = Ok (if i mod 2 = 0 then Some (value_of i) else None))
  done;
  check "empty value kept" (Indexed_file.read f (key_of n) = Ok (Some ""));
  check "appended during gc" (Indexed_file.read f (key_of 101) = Ok (Some (value_of 101)));
  check "header after gc" (Indexed_file.header f (key_of 100) = Ok (Some (header_of 100)));
  (* A raising predicate keeps everything; the exception comes out of gc. *)
  check "gc re-raises"
    (match Indexed_file.gc f ~keep:(fun _ -> raise Exit) with exception Exit -> true | _ -> false);
  check "kept after a raising predicate" (Indexed_file.read f (key_of 100) = Ok (Some (value_of 100)));
  ok "gc keeping all" (Indexed_file.gc f ~keep:(fun _ -> true));
  Indexed_file.close f;
  Indexed_file.close f;
  ignore (expect_error "read after close" Error.Closed (Indexed_file.read f (key_of 0)));
  let f = ok "reopen" (Indexed_file.open_ ~key_size:8 ~header_size:5 d) in
  check "compacted store is durable" (Indexed_file.read f (key_of 2) = Ok (Some (value_of 2)));
  check "dropped key stays dropped" (Indexed_file.read f (key_of 1) = Ok None);
  Indexed_file.close f

let test_header_in_value () =
  let d = Filename.concat (dir ()) "simple" in
  let f =
    ok "open" (Indexed_file.open_ ~no_fsync:true ~header_in_value:true ~key_size:8 ~header_size:4 d)
  in
  ok "append_value" (Indexed_file.append_value f (key_of 1) "HEADrest");
  check "header from the value" (Indexed_file.header f (key_of 1) = Ok (Some "HEAD"));
  check "read" (Indexed_file.read f (key_of 1) = Ok (Some "HEADrest"));
  let msg = expect_error "short value" Error.Invalid_argument (Indexed_file.append_value f (key_of 2) "ab") in
  check "message names the header" (contains msg "header");
  ignore
    (expect_error "header given" Error.Invalid_argument
       (Indexed_file.append f (key_of 2) ~header:"HEAD" "HEADx"));
  Indexed_file.close f;
  let d = Filename.concat (dir ()) "noheader" in
  let f = ok "open" (Indexed_file.open_ ~no_fsync:true ~key_size:8 ~header_size:0 d) in
  ok "empty header" (Indexed_file.append f (key_of 1) ~header:"" "v");
  check "empty header reads" (Indexed_file.read_with_header f (key_of 1) = Ok (Some ("", "v")));
  Indexed_file.close f

let run () =
  test_round_trip ();
  test_header_in_value ()
