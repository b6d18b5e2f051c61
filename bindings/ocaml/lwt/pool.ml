(* The thread pool every blocking call of tzstore.lwt runs in. *)

let init ~min ~max = Lwt_preemptive.init min max ignore
let detach f = Lwt_preemptive.detach f ()
