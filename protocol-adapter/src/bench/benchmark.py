#!/usr/bin/python3
"""Side-by-side benchmark of autopkgtest-virt-uchroot and autopkgtest-virt-unshare.

Drives the virtualisation servers through the same protocol session on the same tarball: uchroot
as a server of its own (--engine=standalone) and through the shared engine (--engine=shared), and
the reference. Prints a table with absolute figures and the ratio reference/uchroot for each row
(above 1 means uchroot is faster or smaller).

    python3 protocol-adapter/src/bench/benchmark.py [--tarball T] [--commands 200]

Without --tarball, a bookworm tarball is made once with mmdebstrap --variant=apt and cached.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
DIST = os.path.normpath(os.path.join(HERE, '..', '..', 'target', 'uchroot'))


class Server:
    """One virtualisation server process, spoken to line by line."""

    def __init__(self, argv, env=None):
        start = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1, env=env)
        self.expect_ok(self.proc.stdout.readline())
        self.start_up = time.perf_counter() - start

    @staticmethod
    def expect_ok(line):
        if not line.startswith('ok'):
            raise RuntimeError('server answered %r' % line)
        return line.split()[1:]

    def ask(self, *words):
        line = ' '.join(urllib.parse.quote(w) for w in words)
        start = time.perf_counter()
        self.proc.stdin.write(line + '\n')
        self.proc.stdin.flush()
        answer = self.expect_ok(self.proc.stdout.readline())
        return answer, time.perf_counter() - start

    def peak_rss_kib(self):
        with open('/proc/%d/status' % self.proc.pid) as status:
            for line in status:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
        return 0

    def quit(self):
        self.proc.stdin.write('quit\n')
        self.proc.stdin.flush()
        self.proc.wait(timeout=600)


def default_tarball():
    cache = os.path.join(os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')),
                         'uchroot-bench')
    os.makedirs(cache, exist_ok=True)
    tarball = os.path.join(cache, 'bookworm-apt.tar')
    if not os.path.exists(tarball):
        subprocess.run(['mmdebstrap', '--variant=apt', '--format=tar', 'bookworm',
                        tarball + '.part.tar'], check=True)
        os.rename(tarball + '.part.tar', tarball)
    return tarball


def exec_latencies(server, count):
    """Wall time of the exec program running `true`, spawned like a client spawns it."""
    (command,), _ = server.ask('print-execute-command')
    argv = [urllib.parse.unquote(a) for a in command.split(',')] + ['true']
    times = []
    for _ in range(count):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name, argv, tarball, commands, scratch, cold_env, rounds=5, engine_rss_kib=None):
    """cold_env(i): the environment of the i-th cold open, whose cache (if any) is empty.
    engine_rss_kib(env): the peak RSS of the engine that serves env's servers, if any."""
    figures = {}
    big = os.path.join(scratch, 'big.bin')
    # Cold: the first open of this tarball (uchroot unpacks it into its cache here). Written
    # pages of earlier rounds are flushed first, so that no open pays for another's writeback.
    cold = []
    first_start_ups = []
    for i in range(1, COLD_ROUNDS):
        os.sync()
        server = Server(argv + ['-t', tarball], cold_env(i))
        first_start_ups.append(server.start_up)
        cold.append(server.ask('open')[1])
        server.ask('close')
        server.quit()
    env = cold_env(0)
    os.sync()
    server = Server(argv + ['-t', tarball], env)
    first_start_ups.append(server.start_up)
    figures[FIRST_START_UP] = statistics.median(first_start_ups)
    (downtmp,), first = server.ask('open')
    figures['cold open'] = statistics.median(cold + [first])
    figures['command (true), median'] = exec_latencies(server, commands)
    _, figures['copydown 100 MB'] = server.ask('copydown', big, downtmp + '/big.bin')
    back = os.path.join(scratch, name + '-back.bin')
    _, figures['copyup 100 MB'] = server.ask('copyup', downtmp + '/big.bin', back)
    if os.path.getsize(back) != os.path.getsize(big):
        raise RuntimeError('%s: copyup returned a file of the wrong size' % name)
    os.unlink(back)
    figures['peak RSS, 1 session (MiB)'] = server.peak_rss_kib() / 1024
    server.ask('close')
    server.quit()

    # Warm: later servers on the same tarball, as each sbuild or autopkgtest run starts one (the
    # reference cannot open again after a close). Medians over the rounds. A close is measured
    # twice: after a revert, as autopkgtest closes, and as the first close of its server, with
    # no revert before, as sbuild closes (its code then runs for the first time in that JVM).
    warm = {'server start-up': [], 'warm open': [], 'revert': [], CLOSE_AFTER_REVERT: [],
            CLOSE_FIRST: []}
    for _ in range(rounds):
        server = Server(argv + ['-t', tarball], env)
        warm['server start-up'].append(server.start_up)
        warm['warm open'].append(server.ask('open')[1])
        warm['revert'].append(server.ask('revert')[1])
        warm[CLOSE_AFTER_REVERT].append(server.ask('close')[1])
        server.quit()
        server = Server(argv + ['-t', tarball], env)
        server.ask('open')
        exec_latencies(server, 1)
        warm[CLOSE_FIRST].append(server.ask('close')[1])
        server.quit()
    for row, times in warm.items():
        figures[row] = statistics.median(times)

    # Twenty open testbeds at once: one server process each, as autopkgtest and sbuild run them.
    servers = [Server(argv + ['-t', tarball], env) for _ in range(20)]
    for s in servers:
        s.ask('open')
    engine = engine_rss_kib(env) if engine_rss_kib else 0
    figures['peak RSS, 20 servers (MiB, sum)'] = (
        sum(s.peak_rss_kib() for s in servers) + engine) / 1024
    for s in servers:
        s.ask('close')
        s.quit()
    return figures


COLD_ROUNDS = 3
FIRST_START_UP = 'start-up, no engine running'
CLOSE_AFTER_REVERT = 'close after a revert'
CLOSE_FIRST = 'close after a command, no revert'

ROWS = [FIRST_START_UP, 'server start-up', 'cold open', 'warm open', 'revert', CLOSE_AFTER_REVERT, CLOSE_FIRST,
        'command (true), median',
        'copydown 100 MB', 'copyup 100 MB', 'peak RSS, 1 session (MiB)',
        'peak RSS, 20 servers (MiB, sum)', 'peak RSS, 20 sessions in one process (MiB)']


def batch_peak_rss_mib(uchroot, tarball, scratch, env):
    """Peak RSS of one uchroot process holding 20 open testbeds (uchroot batch -j 20)."""
    commands = os.path.join(scratch, 'batch.txt')
    with open(commands, 'w') as out:
        out.write('sleep 3\n' * 20)
    proc = subprocess.Popen([uchroot, 'batch', '--tarball', tarball, '--jobs', '20',
                             '--results', os.path.join(scratch, 'batch-results'), commands],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while proc.poll() is None:
        try:
            with open('/proc/%d/status' % proc.pid) as status:
                for line in status:
                    if line.startswith('VmHWM:'):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.05)
    if proc.wait() != 0:
        raise RuntimeError('uchroot batch failed')
    return peak / 1024


def memory_growth(frontend, tarball, env, engine_rss_kib, counts=(1, 20, 50, 100)):
    """RSS of the shared engine plus its frontends, each with an open testbed, as they grow."""
    servers, growth = [], []
    for count in counts:
        while len(servers) < count:
            server = Server([frontend, '--engine=shared', '-t', tarball], env)
            server.ask('open')
            servers.append(server)
        frontends = sum(s.peak_rss_kib() for s in servers) / 1024
        growth.append((count, engine_rss_kib(env) / 1024, frontends))
    for s in servers:
        s.ask('close')
        s.quit()
    return growth


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tarball', help='rootfs tarball (default: a cached bookworm apt tarball)')
    parser.add_argument('--commands', type=int, default=200, help='exec runs for the median')
    parser.add_argument('--rounds', type=int, default=5,
                        help='new servers for the medians of start-up, warm open, revert and close')
    parser.add_argument('--uchroot', default=os.path.join(DIST, 'bin', 'autopkgtest-virt-uchroot'))
    args = parser.parse_args()
    tarball = os.path.abspath(args.tarball or default_tarball())
    if not os.access(args.uchroot, os.X_OK):
        sys.exit('%s not found: build it first (mvn -q -DskipTests package)' % args.uchroot)

    with tempfile.TemporaryDirectory(prefix='uchroot-bench.') as scratch:
        with open(os.path.join(scratch, 'big.bin'), 'wb') as big:
            big.write(os.urandom(100 * 1024 * 1024))
        def private_cache(i, kind='standalone'):
            """A private, empty cache for each cold open; the warm rounds use the first."""
            env = dict(os.environ)
            env['UCHROOT_JAVA_OPTS'] = '-Duchroot.cache-dir=' + os.path.join(
                scratch, '%s-cache%d' % (kind, i))
            return env

        uchroot = os.path.join(os.path.dirname(args.uchroot), 'uchroot')
        ours = measure('uchroot', [args.uchroot, '--engine=standalone'], tarball, args.commands,
                       scratch, private_cache, args.rounds)
        env = private_cache(0)
        ours['peak RSS, 20 sessions in one process (MiB)'] = batch_peak_rss_mib(
            uchroot, tarball, scratch, env)

        def shared_engine(i):
            """As private_cache(i), each with an engine of its own, started by its first server."""
            env = private_cache(i, 'shared')
            env['UCHROOT_RUNTIME_DIR'] = os.path.join(scratch, 'run%d' % i)
            return env

        def engine_rss_kib(env):
            status = subprocess.run([uchroot, 'engine', 'status'], env=env, check=True,
                                    capture_output=True, text=True).stdout
            pid = int(status.split('pid: ')[1].split()[0])
            with open('/proc/%d/status' % pid) as lines:
                return next(int(line.split()[1]) for line in lines if line.startswith('VmHWM:'))

        shared = measure('shared', [args.uchroot, '--engine=shared'], tarball, args.commands,
                         scratch, shared_engine, args.rounds, engine_rss_kib)
        shared['peak RSS, 20 sessions in one process (MiB)'] = shared[
            'peak RSS, 20 servers (MiB, sum)']
        growth = memory_growth(args.uchroot, tarball, shared_engine(0), engine_rss_kib)
        for i in range(COLD_ROUNDS):
            subprocess.run([uchroot, 'engine', 'stop'], env=shared_engine(i),
                           stdout=subprocess.DEVNULL, check=True)
        reference = measure('unshare', ['autopkgtest-virt-unshare'], tarball, args.commands, scratch,
                            lambda i: None, args.rounds)
        # The reference has one process per testbed: its twenty servers are its whole cost.
        reference['peak RSS, 20 sessions in one process (MiB)'] = reference[
            'peak RSS, 20 servers (MiB, sum)']
        for kind in ('standalone', 'shared'):
            for i in range(COLD_ROUNDS):
                shutil.rmtree(os.path.join(scratch, '%s-cache%d' % (kind, i)), ignore_errors=True)

    size = os.path.getsize(tarball) / 1e6
    print('tarball: %s (%.0f MB); %d commands for the median; %d rounds; %s' % (
        tarball, size, args.commands, args.rounds, os.uname().release))
    print()
    print('| %-42s | %14s | %14s | %14s | %9s | %9s |' % (
        'row', 'standalone', 'shared', 'unshare', 'ratio', 'ratio'))
    print('| %-42s | %14s | %14s | %14s | %9s | %9s |' % (
        '', '', '', '', 'standalone', 'shared'))
    print('|%s|%s|%s|%s|%s|%s|' % ('-' * 44, '-' * 16, '-' * 16, '-' * 16, '-' * 11, '-' * 11))
    for row in ROWS:
        value, engine, ref = ours[row], shared[row], reference[row]
        unit = 'MiB' if 'RSS' in row else 'ms'
        scale = 1 if unit == 'MiB' else 1000
        print('| %-42s | %11.1f %-3s | %11.1f %-3s | %11.1f %-3s | %8.1fx | %8.1fx |' % (
            row, value * scale, unit, engine * scale, unit, ref * scale, unit,
            ref / value if value else float('inf'), ref / engine if engine else float('inf')))
    print()
    print('shared engine, frontends each with an open testbed (peak RSS):')
    for count, engine, frontends in growth:
        print('  %3d frontends: engine %.1f MiB + frontends %.1f MiB = %.1f MiB' % (
            count, engine, frontends, engine + frontends))


if __name__ == '__main__':
    main()
