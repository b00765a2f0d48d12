"""Lab keepers: a real lab (netns, libvirt) that lives between CLI commands.

`stackdrill up --backend netns|libvirt` starts a keeper, a detached process that brings
the lab up and holds it: its heartbeat receivers, workload histories, volume servers,
fault bookkeeping and the recovery engine's inventory live there, as they do in a drill
run. Later commands (`status`, `inject`, `heal`, `recover`, `verify`, `wait`) send it
typed requests over an authenticated Unix socket (`multiprocessing.connection`, whose
HMAC challenge runs before anything is unpickled) and get typed values back; `down`
stops it, and the keeper tears the lab down on its way out, as a drill run does on
SIGTERM. This is Molecule's create / verify / destroy and containerlab's deploy /
inspect / destroy for stackdrill's real backends.
"""
