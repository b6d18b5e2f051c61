let () =
  let path = Filename.concat (if Array.length Sys.argv > 1 then Sys.argv.(1) else ".") "head" in
  let s = Tzstore.Error.get_ok (Tzstore.Singleton.open_ ~no_fsync:true path) in
  ignore (Tzstore.Singleton.write s "block 42");
  (match Tzstore.Singleton.read s with
  | Ok (Some v) -> print_endline ("read: " ^ v)
  | Ok None -> print_endline "not found"
  | Error e -> prerr_endline (Tzstore.Error.to_string e));
  ignore (Tzstore.Singleton.delete s);
  if Tzstore.Singleton.read s = Ok None then print_endline "not found";
  let ro = Tzstore.Error.get_ok (Tzstore.Singleton.open_ ~readonly:true path) in
  (match Tzstore.Singleton.write ro "x" with
  | Error e -> print_endline ("error: " ^ Tzstore.Error.to_string e) (* TZS_READ_ONLY: ... *)
  | Ok () -> ());
  Tzstore.Singleton.close ro;
  Tzstore.Singleton.close s
