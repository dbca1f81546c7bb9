/**
 * A real systemd, booted as PID 1 of its own namespaces, to run the units
 * in deploy/systemd/ the way a host would: the machine's root file system
 * under a copy-on-write overlay (writes land in a tmpfs and vanish), its own
 * PID, mount, UTS, IPC, network (only loopback) and cgroup namespaces, a
 * private /dev, and read-only /proc/sys and /sys, so nothing it does reaches
 * the host. The spike sources, the Deno binary and cache, and SPIRE's
 * binaries are bind-mounted read-only where the units expect them.
 *
 * Units that would touch the kernel for the whole machine (sysctl, binfmt,
 * module loading, udev) are masked. Needs root, `unshare`, `nsenter`,
 * overlayfs and a cgroup2 mount (the test asserts them).
 *
 * @module
 */
import { join } from "node:path";

/** Output of a command run inside. */
export interface ContainerResult {
  /** Exit code. */
  readonly code: number;
  /** Standard output and error, trimmed. */
  readonly output: string;
}

/** A running container. */
export interface SystemdContainer {
  /** PID of its systemd, as the host sees it. */
  readonly pid: number;
  /** Runs a Bash script inside, as root. */
  sh(script: string, options?: { stdin?: string; timeoutMs?: number }): Promise<ContainerResult>;
  /** Kills everything inside and removes what the container left on the host. */
  stop(): Promise<void>;
}

/** What to mount inside. */
export interface SystemdContainerOptions {
  /** The spike checkout (its cmd/, lib/, deno.json, deno.lock and deploy/systemd/ are used). */
  readonly repo: string;
  /** A Deno cache holding every dependency of cmd/spike.ts (mounted at /opt/spike/deno-dir). */
  readonly denoDir: string;
  /** Directory with `spire-server` and `spire-agent` (mounted at /opt/spire). */
  readonly spireBin: string;
}

/** Units that would change the whole machine's kernel state, or need real devices. */
const MASKED = [
  "systemd-sysctl.service",
  "systemd-binfmt.service",
  "proc-sys-fs-binfmt_misc.automount",
  "proc-sys-fs-binfmt_misc.mount",
  "systemd-modules-load.service",
  "systemd-remount-fs.service",
  "systemd-tmpfiles-setup-dev.service",
  "systemd-udevd.service",
  "systemd-udev-trigger.service",
  "getty.target",
  "console-getty.service",
];

/** The script PID 1 of the new namespaces runs before it becomes systemd. */
function bootScript(options: SystemdContainerOptions, scratch: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const deploy = join(options.repo, "deploy/systemd");
  return `set -euo pipefail
C=${q(scratch)}
mount -t tmpfs tmpfs "$C"
mkdir "$C/upper" "$C/work" "$C/root"
mount -t overlay overlay -o lowerdir=/,upperdir="$C/upper",workdir="$C/work" "$C/root"
R="$C/root"
mkdir -p "$R/opt/spike/cmd" "$R/opt/spike/lib" "$R/opt/spike/deno-dir" "$R/opt/spire" "$R/etc/spike" \\
  "$R/usr/local/bin" "$R/usr/lib/sysusers.d" "$R/oldroot"
for d in cmd lib; do mount --bind -o ro ${q(options.repo)}/$d "$R/opt/spike/$d"; done
for f in deno.json deno.lock; do touch "$R/opt/spike/$f"; mount --bind -o ro ${
    q(options.repo)
  }/$f "$R/opt/spike/$f"; done
mount --bind -o ro ${q(options.denoDir)} "$R/opt/spike/deno-dir"
touch "$R/usr/local/bin/deno"; mount --bind -o ro ${q(Deno.execPath())} "$R/usr/local/bin/deno"
mount --bind -o ro ${q(options.spireBin)} "$R/opt/spire"
cp ${q(deploy)}/*.service ${q(deploy)}/spike.target "$R/etc/systemd/system/"
cp ${q(deploy)}/env/*.env "$R/etc/spike/"
cp ${q(deploy)}/spike.sysusers.conf "$R/usr/lib/sysusers.d/spike.conf"
for u in ${MASKED.join(" ")}; do ln -sf /dev/null "$R/etc/systemd/system/$u"; done
printf '[Unit]\\nDescription=spike systemd test container\\n' > "$R/etc/systemd/system/spike-test.target"
mount -t proc proc "$R/proc"
mount --bind -o ro "$R/proc/sys" "$R/proc/sys"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
mount -t tmpfs -o mode=755 tmpfs "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
touch "$R/dev/console"; mount --bind /dev/null "$R/dev/console"
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs tmpfs "$R/dev/shm"
cd "$R"
# pivot_root, not chroot: the kernel refuses user namespaces (PrivateUsers=) inside a chroot.
pivot_root . oldroot
umount -l /oldroot
exec /usr/bin/env -i container=spike-test /lib/systemd/systemd --unit=spike-test.target --log-target=journal
`;
}

/** The cgroup2 mount point of this machine. */
async function cgroup2Root(): Promise<string> {
  const mounts = await Deno.readTextFile("/proc/mounts");
  const line = mounts.split("\n").find((l) => l.split(" ")[2] === "cgroup2");
  if (!line) throw new Error("no cgroup2 file system is mounted");
  return line.split(" ")[1]!;
}

/** The first child of `pid`, once there is one. */
async function childOf(pid: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const children = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
    const child = Number(children.trim().split(" ")[0]);
    if (child > 0) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`process ${pid} started no child`);
}

/** Removes a cgroup subtree, deepest first, once its processes are gone. */
async function removeCgroup(dir: string): Promise<void> {
  const dirs: string[] = [];
  const walk = async (d: string) => {
    for await (const entry of Deno.readDir(d)) if (entry.isDirectory) await walk(join(d, entry.name));
    dirs.push(d);
  };
  await walk(dir).catch(() => {});
  for (const d of dirs) {
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        await Deno.remove(d);
        break;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) break;
        await new Promise((resolve) => setTimeout(resolve, 50)); // processes still exiting
      }
    }
  }
}

/** Boots the container and waits until its systemd answers. */
export async function startSystemdContainer(options: SystemdContainerOptions): Promise<SystemdContainer> {
  const scratch = await Deno.makeTempDir({ prefix: "spike_systemd_ctr_" });
  const cgroup = join(await cgroup2Root(), `spike-systemd-test-${Deno.pid}-${Date.now()}`);
  await Deno.mkdir(cgroup);
  // The outer shell moves itself into the cgroup, so the container's cgroup
  // namespace (and everything its systemd creates) lives below it.
  const launcher = new Deno.Command("bash", {
    args: [
      "-c",
      `echo $$ > '${cgroup}/cgroup.procs' && exec unshare --mount --pid --fork --uts --ipc --net --cgroup ` +
      `--propagation private bash -s`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let bootOutput = "";
  const decoder = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) bootOutput = (bootOutput + decoder.decode(chunk)).slice(-4000);
  };
  const pumps = [collect(launcher.stdout), collect(launcher.stderr)];
  const writer = launcher.stdin.getWriter();
  await writer.write(new TextEncoder().encode(bootScript(options, scratch)));
  await writer.close();

  let pid = 0;
  const stop = async () => {
    if (pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL"); // PID 1 of the namespace: the kernel kills everything in it
      } catch { /* already gone */ }
    }
    try {
      launcher.kill("SIGKILL");
    } catch { /* already gone */ }
    await launcher.status;
    await Promise.all(pumps).catch(() => {});
    await removeCgroup(cgroup);
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  };

  const sh: SystemdContainer["sh"] = async (script, shOptions = {}) => {
    const child = new Deno.Command("nsenter", {
      args: [
        "-t",
        String(pid),
        "-m",
        "-p",
        "-u",
        "-i",
        "-n",
        "-C",
        "-r",
        "-w",
        "/usr/bin/env",
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        "SYSTEMD_COLORS=0",
        "SYSTEMD_PAGER=",
        "bash",
        "-c",
        script,
      ],
      stdin: shOptions.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* done */ }
    }, shOptions.timeoutMs ?? 120_000);
    if (shOptions.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(shOptions.stdin));
      await w.close();
    }
    const out = await child.output();
    clearTimeout(timer);
    return { code: out.code, output: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim() };
  };

  try {
    // `unshare --fork` has a single child: PID 1 inside, which execs systemd.
    pid = await childOf(launcher.pid, 10_000);
    const deadline = Date.now() + 60_000;
    while (true) {
      const comm = await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "");
      if (comm.trim() === "systemd") {
        const state = await sh("systemctl is-active spike-test.target").catch(() => ({ code: 1, output: "" }));
        if (state.output === "active") break;
      }
      if (Date.now() > deadline) throw new Error(`systemd did not come up:\n${bootOutput}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid, sh, stop };
}
