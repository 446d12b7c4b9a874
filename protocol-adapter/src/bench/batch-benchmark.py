#!/usr/bin/python3
"""Benchmark of `uchroot batch` against xargs -P running autopkgtest with autopkgtest-virt-unshare.

Runs the same autopkgtest jobs (the source packages of batch-packages.tsv beside this file, cycled
until --count jobs, each with --no-built-binaries --apt-upgrade so that "@" and every other test
dependency come from the archive) on the same tarball, --jobs at a time, both ways:

  reference: printf ... | xargs -P JOBS ... autopkgtest OPTIONS PKG.dsc -- unshare -t TARBALL
  uchroot:   uchroot batch plan.yaml -j JOBS --no-apt-cache, then with its apt cache (the default)
             --cache-runs times (the first of them fills the cache, the later ones find it warm)

and prints the wall time of each run and the ratio, whether the verdicts of every test are those of
the reference, the peak Pss of the batch's processes by class (sampled every 0.2 s from
/proc/PID/smaps_rollup over the process tree of the batch, plus squid processes started after it),
and the bytes received on the host's network interfaces during each run. Run it as root:

    python3 protocol-adapter/src/bench/batch-benchmark.py [--tarball T] [--jobs 4] \\
        [--uchroot target/uchroot/bin/uchroot] [--work DIR] [--skip-reference | --skip-batch]

Without --tarball, a bookworm tarball is made once with mmdebstrap --variant=apt and cached. The
reference's figures are kept in WORK/reference/run.json: --skip-reference uses those of an earlier
run on the same tarball and jobs, or else compares the verdicts with those recorded in
batch-packages.tsv. The batch without the apt cache and the first one with it each start from
empty caches in WORK (uchroot.cache-dir, and squid's cache beside it), as each reference job
unpacks the tarball and fetches its packages anew; --user-cache runs them on the user's caches as
they are. `uchroot doctor` runs once first, so that the class data archive the launcher makes in
the background on its first run here takes no core from a measured run. Bytes count whatever else
the machine receives meanwhile: run it on an otherwise quiet machine.

Exit status: 0, or 1 when a verdict differs from the reference's, 2 for a command line that does
not parse, 3 when a run could not be made.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time

# The tarball the single-testbed benchmark makes and caches, shared by both.
from benchmark import default_tarball

HERE = os.path.dirname(os.path.abspath(__file__))
DIST = os.path.normpath(os.path.join(HERE, '..', '..', 'target', 'uchroot'))
PACKAGES = os.path.join(HERE, 'batch-packages.tsv')
OPTIONS = ['--no-built-binaries', '--apt-upgrade']
SAMPLE_INTERVAL = 0.2

# Process classes for the Pss figures. OWN are uchroot's own processes (the goal's 300 MiB);
# squid is the batch's apt cache, counted apart; the others are autopkgtest and the testbeds.
JAVA, FRONTEND, JOBD, SQUID, AUTOPKGTEST, OTHER = (
    'batch process (java)', 'autopkgtest-virt-uchroot', 'uchroot-jobd', 'squid (apt cache)',
    'autopkgtest', 'testbeds and other')
CLASSES = [JAVA, FRONTEND, JOBD, SQUID, AUTOPKGTEST, OTHER]
OWN = (JAVA, FRONTEND, JOBD)
OWN_TOTAL = 'own processes (java + frontends + jobd)'
OWN_AND_SQUID = 'own processes + squid'
MEMORY_GOAL_MIB = 300
SPEED_GOAL = 2.0


def default_work():
    """Not under /root: squid, which the batch runs as its own user, keeps its cache in here."""
    return '/var/tmp/uchroot-batch-bench'


# ---------------------------------------------------------------------------------------------
# Packages and jobs

def read_packages(path):
    """batch-packages.tsv: package, version, what its tests need, reference verdicts
    (NAME=VERDICT separated by spaces), reference seconds; '#' comments."""
    packages = []
    with open(path) as lines:
        for line in lines:
            if not line.strip() or line.startswith('#'):
                continue
            fields = line.rstrip('\n').split('\t')
            if len(fields) < 2:
                raise SystemExit('%s: expected package and version, tab-separated: %r' % (path, line))
            verdicts = {}
            if len(fields) > 3:
                for word in fields[3].split():
                    name, _, verdict = word.rpartition('=')
                    verdicts[name] = verdict
            packages.append({'name': fields[0], 'version': fields[1],
                             'needs': fields[2] if len(fields) > 2 else '',
                             'verdicts': verdicts})
    if not packages:
        raise SystemExit('%s names no package' % path)
    return packages


def make_jobs(packages, count):
    """count jobs, cycling through the packages; a package that runs more than once gets ids
    PKG.1, PKG.2, ..."""
    jobs = [packages[i % len(packages)] for i in range(count)]
    runs = {}
    for p in jobs:
        runs[p['name']] = runs.get(p['name'], 0) + 1
    seen = {}
    out = []
    for p in jobs:
        seen[p['name']] = seen.get(p['name'], 0) + 1
        job_id = p['name'] if runs[p['name']] == 1 else '%s.%d' % (p['name'], seen[p['name']])
        out.append(dict(p, id=job_id))
    return out


def dsc_name(package):
    version = package['version'].split(':', 1)[-1]
    return '%s_%s.dsc' % (package['name'], version)


def dsc_files(dsc):
    """The files a .dsc names (Files: field), besides itself."""
    files, inside = [], False
    with open(dsc) as lines:
        for line in lines:
            if line.startswith('Files:'):
                inside = True
            elif inside and line.startswith(' '):
                files.append(line.split()[2])
            elif inside:
                break
    return files


def fetch_sources(packages, directory):
    """apt-get source --download-only PKG=VERSION for each package whose files are not there yet;
    returns {package name: absolute .dsc path}."""
    os.makedirs(directory, exist_ok=True)
    dscs = {}
    for p in packages:
        dsc = os.path.join(directory, dsc_name(p))
        complete = os.path.exists(dsc) and all(
            os.path.exists(os.path.join(directory, f)) for f in dsc_files(dsc))
        if not complete:
            proc = subprocess.run(['apt-get', 'source', '-q', '--download-only',
                                   '%s=%s' % (p['name'], p['version'])],
                                  cwd=directory, capture_output=True, text=True)
            if proc.returncode != 0 or not os.path.exists(dsc):
                sys.stderr.write(proc.stdout + proc.stderr)
                raise SystemExit('apt-get source %s=%s failed (deb-src entries for bookworm and '
                                 'apt-get update?)' % (p['name'], p['version']))
        dscs[p['name']] = os.path.abspath(dsc)
    return dscs


# ---------------------------------------------------------------------------------------------
# Verdicts

VERDICT_WORDS = {'PASS', 'FAIL', 'SKIP', 'FLAKY', 'NEUTRAL', 'ERROR'}


def parse_summary(path):
    """autopkgtest's --summary-file: 'TESTNAME VERDICT [details]' per test, in order; blame:,
    badpkg: and other lines of explanation are not tests. {} when there is no file."""
    verdicts = {}
    try:
        with open(path) as lines:
            for line in lines:
                words = line.split()
                if len(words) >= 2 and words[1] in VERDICT_WORDS and not words[0].endswith(':'):
                    verdicts[words[0]] = words[1]
    except FileNotFoundError:
        pass
    return verdicts


def normalise(verdict):
    """'PASS (superficial)' and 'pass' are PASS: the first word, upper case."""
    words = verdict.split()
    return words[0].upper() if words else ''


def debci_status(exit_code):
    """autopkgtest's exit status as debci reads it, as uchroot batch does."""
    if exit_code in (0, 2):
        return 'pass'
    if exit_code in (4, 6, 12, 14):
        return 'fail'
    if exit_code == 8:
        return 'neutral'
    return 'tmpfail'


def parse_results(path):
    """uchroot batch's results.json: {job id: {'status', 'tests': {name: verdict},
    'duration': seconds}}."""
    with open(path) as f:
        data = json.load(f)
    jobs = {}
    for job in data['jobs']:
        jobs[job['id']] = {
            'status': job['status'],
            'tests': {t['name']: normalise(t['verdict']) for t in job.get('tests', [])},
            'duration': job.get('duration_s'),
        }
    return jobs


def compare(reference, ours):
    """Differences between two {job id: {'status', 'tests'}}, one line each; [] if identical.
    A reference without a status (verdicts recorded in batch-packages.tsv) compares tests only."""
    differences = []
    for job_id, ref in reference.items():
        got = ours.get(job_id)
        if got is None:
            differences.append('%s: missing from the results' % job_id)
            continue
        if ref.get('status') and ref['status'] != got['status']:
            differences.append('%s: status %s, reference %s' % (job_id, got['status'], ref['status']))
        for name in sorted(set(ref['tests']) | set(got['tests'])):
            a, b = ref['tests'].get(name, '-'), got['tests'].get(name, '-')
            if a != b:
                differences.append('%s: test %s %s, reference %s' % (job_id, name, b, a))
    for job_id in ours:
        if job_id not in reference:
            differences.append('%s: not a job of the reference' % job_id)
    return differences


# ---------------------------------------------------------------------------------------------
# Measurements: network bytes and Pss

def counted_interfaces():
    """Non-loopback interfaces with a device behind them (so that ifb mirrors, veth pairs and
    bridges do not count a packet twice); all non-loopback ones if none has."""
    with open('/proc/net/dev') as f:
        names = [line.split(':')[0].strip() for line in f.readlines()[2:]]
    names = [n for n in names if n != 'lo']
    physical = [n for n in names if os.path.exists('/sys/class/net/%s/device' % n)]
    return physical or names


def received_bytes(interfaces):
    total = 0
    with open('/proc/net/dev') as f:
        for line in f.readlines()[2:]:
            name, _, counters = line.partition(':')
            if name.strip() in interfaces:
                total += int(counters.split()[0])
    return total


def read_stat(pid):
    """(ppid, comm, start time in clock ticks) of a process, or None if it is gone."""
    try:
        with open('/proc/%s/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    close = stat.rfind(')')
    fields = stat[close + 2:].split()
    return int(fields[1]), stat[stat.find('(') + 1:close], int(fields[19])


def cmdline(pid):
    try:
        with open('/proc/%s/cmdline' % pid, 'rb') as f:
            return [w.decode(errors='replace') for w in f.read().split(b'\0') if w]
    except OSError:
        return []


INTERPRETERS = ('sh', 'bash', 'dash', 'perl', 'env')


def program(argv):
    """The program a command line runs: argv[0]'s base name, or that of the script an
    interpreter (python3 /usr/bin/autopkgtest, sh .../bin/uchroot) runs."""
    if not argv:
        return ''
    prog = os.path.basename(argv[0])
    if (prog.startswith('python') or prog in INTERPRETERS) and len(argv) > 1:
        for word in argv[1:]:
            if not word.startswith('-'):
                return os.path.basename(word)
    return prog


def classify(comm, argv, parent_class):
    prog = program(argv)
    if parent_class == SQUID or comm.startswith('squid') or prog.startswith('squid'):
        return SQUID
    if comm == 'java' or prog == 'java' or prog == 'uchroot':
        return JAVA
    if prog == 'autopkgtest-virt-uchroot':
        return FRONTEND
    if comm == 'uchroot-jobd' or prog == 'uchroot-jobd':
        return JOBD
    if prog == 'autopkgtest':
        return AUTOPKGTEST
    return OTHER


def pss_kib(pid):
    try:
        with open('/proc/%s/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssSampler:
    """Peak Pss by class of the process tree rooted at one process, and of squid processes that
    started after it (squid may leave its parent to run as a daemon)."""

    def __init__(self, root):
        self.root = root
        self.root_start = read_stat(root)[2]
        self.kinds = {}  # (pid, start, comm) -> class
        self.peak = {c: 0 for c in CLASSES + [OWN_TOTAL, OWN_AND_SQUID]}
        self.most = {c: 0 for c in CLASSES}  # most processes of a class at once
        self.samples = 0

    def sample(self):
        procs = {}
        for name in os.listdir('/proc'):
            if name.isdigit():
                stat = read_stat(name)
                if stat:
                    procs[int(name)] = stat
        children = {}
        for pid, (ppid, _, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        seeds = [self.root] + [pid for pid, (_, comm, start) in procs.items()
                               if comm.startswith('squid') and start >= self.root_start]
        classes, stack, seen = {}, [(pid, None) for pid in seeds if pid in procs], set()
        while stack:
            pid, parent_class = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            _, comm, start = procs[pid]
            key = (pid, start, comm)
            kind = self.kinds.get(key)
            if kind is None:
                kind = self.kinds[key] = classify(comm, cmdline(pid), parent_class)
            classes[pid] = kind
            stack.extend((child, kind) for child in children.get(pid, ()))
        if self.root not in classes:
            return
        total = {c: 0 for c in CLASSES}
        count = {c: 0 for c in CLASSES}
        for pid, kind in classes.items():
            total[kind] += pss_kib(pid)
            count[kind] += 1
        own = sum(total[c] for c in OWN)
        total[OWN_TOTAL] = own
        total[OWN_AND_SQUID] = own + total[SQUID]
        for c, kib in total.items():
            self.peak[c] = max(self.peak[c], kib)
        for c, n in count.items():
            self.most[c] = max(self.most[c], n)
        self.samples += 1


# ---------------------------------------------------------------------------------------------
# The runs

REFERENCE_JOB = r'''
dsc=$1 dir=$2 tarball=$3
date +%s.%N > "$dir/start"
autopkgtest OPTIONS --summary-file="$dir/summary" -o "$dir/artifacts" "$dsc" -- unshare -t "$tarball" \
    > "$dir/log" 2>&1
echo $? > "$dir/exitcode"
date +%s.%N > "$dir/end"
'''


def run_reference(jobs, dscs, tarball, parallel, options, directory, interfaces):
    """xargs -P PARALLEL: one autopkgtest per job, its log, summary, exit status and wall time in
    DIRECTORY/ID/. Each job is three words of xargs's input (.dsc, directory, tarball), separated
    by NULs, for sh -c."""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    words = []
    for job in jobs:
        job_dir = os.path.join(directory, job['id'])
        os.makedirs(job_dir)
        words += [dscs[job['name']], job_dir, tarball]
    script = REFERENCE_JOB.replace('OPTIONS', ' '.join(shlex.quote(o) for o in options))
    argv = ['xargs', '-0', '-n', '3', '-P', str(parallel), 'sh', '-c', script, 'sh']
    before = received_bytes(interfaces)
    start = time.monotonic()
    proc = subprocess.run(argv, input=b''.join(w.encode() + b'\0' for w in words))
    wall = time.monotonic() - start
    received = received_bytes(interfaces) - before
    if proc.returncode not in (0, 123):  # 123: some autopkgtest exited non-zero
        raise RuntimeError('xargs exited with %d' % proc.returncode)
    results = {}
    for job in jobs:
        job_dir = os.path.join(directory, job['id'])
        try:
            with open(os.path.join(job_dir, 'exitcode')) as f:
                code = int(f.read())
            with open(os.path.join(job_dir, 'start')) as f, open(os.path.join(job_dir, 'end')) as g:
                duration = float(g.read()) - float(f.read())
        except (OSError, ValueError):
            code, duration = None, None
        results[job['id']] = {
            'status': debci_status(code) if code is not None else 'error',
            'exit_code': code,
            'tests': parse_summary(os.path.join(job_dir, 'summary')),
            'duration': duration,
        }
    return {'wall': wall, 'received': received, 'jobs': results}


def write_plan(path, jobs, dscs, tarball, parallel, options):
    """The plan for uchroot batch: YAML, its strings in JSON's double quotes (valid YAML)."""
    q = json.dumps
    with open(path, 'w') as plan:
        plan.write('# Written by batch-benchmark.py\n')
        plan.write('defaults: {tarball: %s, jobs: %d}\n' % (q(tarball), parallel))
        plan.write('jobs:\n')
        for job in jobs:
            plan.write('  - {id: %s, autopkgtest: %s, options: [%s]}\n' % (
                q(job['id']), q(dscs[job['name']]), ', '.join(q(o) for o in options)))


def run_batch(uchroot, plan, parallel, results_dir, apt_cache, interfaces, log, cache_dir):
    """One uchroot batch; cache_dir, if given, is its cache (uchroot.cache-dir: the unpacked
    tarball) and, beside it, CACHE_DIR-apt, its apt cache."""
    shutil.rmtree(results_dir, ignore_errors=True)
    argv = [uchroot, 'batch', plan, '-j', str(parallel), '--results', results_dir]
    if not apt_cache:
        argv.append('--no-apt-cache')
    env = dict(os.environ)
    if cache_dir:
        env['UCHROOT_JAVA_OPTS'] = (env.get('UCHROOT_JAVA_OPTS', '') +
                                    ' -Duchroot.cache-dir=' + cache_dir).strip()
    before = received_bytes(interfaces)
    start = time.monotonic()
    with open(log, 'w') as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env)
        sampler = PssSampler(proc.pid)
        while proc.poll() is None:
            sampler.sample()
            time.sleep(SAMPLE_INTERVAL)
    wall = time.monotonic() - start
    received = received_bytes(interfaces) - before
    results_json = os.path.join(results_dir, 'results.json')
    if not os.path.exists(results_json):
        raise RuntimeError('uchroot batch exited with %d and wrote no %s: see %s' % (
            proc.returncode, results_json, log))
    return {'wall': wall, 'received': received, 'exit_code': proc.returncode,
            'jobs': parse_results(results_json),
            'peak_pss_mib': {c: kib / 1024 for c, kib in sampler.peak.items()},
            'most_processes': sampler.most, 'samples': sampler.samples}


def warm_up(uchroot, log):
    """uchroot doctor, once: the launcher's first run here makes the JVM's class data archive in
    the background, which would otherwise take a core from the first measured run; wait for it."""
    try:
        with open(log, 'w') as out:
            subprocess.run([uchroot, 'doctor'], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        print('warning: %s doctor: %s' % (uchroot, e), file=sys.stderr)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        busy = False
        for name in os.listdir('/proc'):
            if name.isdigit() and any('make-class-archive' in w for w in cmdline(name)):
                busy = True
        if not busy:
            return
        time.sleep(1)


def unreachable_by_others(path):
    """The first directory above path that other users cannot enter (squid runs as its own)."""
    path = os.path.dirname(os.path.abspath(path))
    while path != '/':
        if not os.stat(path).st_mode & 0o001:
            return path
        path = os.path.dirname(path)
    return None


# ---------------------------------------------------------------------------------------------
# Report

def autopkgtest_version():
    try:
        return subprocess.run(['dpkg-query', '-W', '-f', '${Version}', 'autopkgtest'],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'


def machine():
    with open('/proc/meminfo') as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return '%d processors (nproc), %.0f GiB, kernel %s %s, load %.2f %.2f %.2f' % (
        len(os.sched_getaffinity(0)), mem, platform.release(), platform.machine(),
        *os.getloadavg())


def mb(n):
    return '%.1f MB' % (n / 1e6)


def verdict_line(job):
    tests = job['tests']
    counts = {}
    for verdict in tests.values():
        counts[verdict] = counts.get(verdict, 0) + 1
    return '%s (%s)' % (job['status'] or '-', ', '.join(
        '%d %s' % (n, v) for v, n in sorted(counts.items())) or 'no tests')


def report(args, tarball, jobs, reference, reference_origin, batches, recorded_differences):
    print()
    print('autopkgtest %s; %s' % (autopkgtest_version(), machine()))
    print('tarball: %s (%.0f MB); %d jobs of %d packages, %d at a time; options: %s' % (
        tarball, os.path.getsize(tarball) / 1e6, len(jobs), len({j['name'] for j in jobs}),
        args.jobs, ' '.join(args.options)))
    print('reference: %s' % reference_origin)
    print()

    runs = []
    if reference and reference.get('wall') is not None:
        runs.append(('xargs -P%d autopkgtest -- unshare' % args.jobs, reference))
    runs += batches
    if runs:
        ref_wall = reference.get('wall') if reference else None
        print('| %-44s | %10s | %9s | %16s | %-10s |' % (
            'run', 'wall', 'ratio', 'bytes received', 'verdicts'))
        print('|%s|%s|%s|%s|%s|' % ('-' * 46, '-' * 12, '-' * 11, '-' * 18, '-' * 12))
        for name, run in runs:
            ratio = '%8.2fx' % (ref_wall / run['wall']) if ref_wall else '%9s' % 'n/a'
            same = run.get('differences')
            same = 'reference' if same is None else ('identical' if not same else
                                                      '%d differences' % len(same))
            print('| %-44s | %8.1f s | %s | %16s | %-10s |' % (
                name, run['wall'], ratio, mb(run['received']), same))
        print('(ratio: reference wall time / this run\'s; bytes: received on %s during the run)'
              % ', '.join(args.interfaces))
        print()

    for name, run in batches:
        print('peak Pss, %s (%d samples every %.1f s):' % (name, run['samples'], SAMPLE_INTERVAL))
        for c in CLASSES + [OWN_TOTAL, OWN_AND_SQUID]:
            most = run['most_processes'].get(c)
            print('  %-42s %8.1f MiB%s' % (c, run['peak_pss_mib'][c],
                                           '  (up to %d processes)' % most if most else ''))
        print()

    print('verdicts by job:')
    header = ['job', 'reference'] + [name for name, _ in batches]
    rows = []
    for job in jobs:
        row = [job['id']]
        ref = reference['jobs'].get(job['id']) if reference else None
        row.append(verdict_line(ref) + (' %.0f s' % ref['duration']
                                        if ref and ref.get('duration') else '') if ref else '-')
        for _, run in batches:
            got = run['jobs'].get(job['id'])
            row.append(verdict_line(got) + (' %.0f s' % got['duration']
                                            if got and got.get('duration') else '') if got else '-')
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print('  ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)))
    print()

    if recorded_differences is not None:
        print('reference against the verdicts recorded in %s: %s' % (
            os.path.basename(args.packages), 'identical' if not recorded_differences else
            '%d differ (unchanged packages whose verdicts change are flaky, or the archive moved)'
            % len(recorded_differences)))
        for line in recorded_differences:
            print('  ' + line)
        print()

    failed = False
    for name, run in batches:
        if run['differences']:
            failed = True
            print('verdicts of "%s" differ from the reference:' % name)
            for line in run['differences']:
                print('  ' + line)
    if batches:
        print('identical verdicts: %s' % ('no' if failed else 'yes'))
        first = next((run for name, run in batches if run['apt_cache']), batches[0][1])
        if reference and reference.get('wall'):
            ratio = reference['wall'] / first['wall']
            print('goal, wall time at least %.0fx shorter (first run with the apt cache): %.2fx: %s'
                  % (SPEED_GOAL, ratio, 'met' if ratio >= SPEED_GOAL else 'NOT met'))
        own = max(run['peak_pss_mib'][OWN_TOTAL] for _, run in batches)
        squid = max(run['peak_pss_mib'][SQUID] for _, run in batches)
        print('goal, peak Pss of uchroot\'s own processes at most %d MiB: %.1f MiB: %s '
              '(squid apart: %.1f MiB)' % (MEMORY_GOAL_MIB, own,
                                           'met' if own <= MEMORY_GOAL_MIB else 'NOT met', squid))
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tarball', help='rootfs tarball (default: a cached bookworm apt tarball)')
    parser.add_argument('--jobs', type=int, default=4, help='jobs at a time, both ways')
    parser.add_argument('--count', type=int, default=20,
                        help='number of jobs, cycling through the packages (default 20)')
    parser.add_argument('--packages', default=PACKAGES, help='the packages (batch-packages.tsv)')
    parser.add_argument('--uchroot', default=os.path.join(DIST, 'bin', 'uchroot'),
                        help='the uchroot command (default: the build\'s, %(default)s)')
    parser.add_argument('--work', default=default_work(),
                        help='sources, plan, logs and results (default: %(default)s)')
    parser.add_argument('--cache-runs', type=int, default=2,
                        help='runs of the batch with its apt cache after the one without '
                             '(default 2: the first fills the cache, the second finds it warm)')
    parser.add_argument('--option', dest='options', action='append',
                        help='autopkgtest option for every job, both ways (repeatable; default: %s)'
                        % ' '.join(OPTIONS))
    parser.add_argument('--user-cache', action='store_true',
                        help='run the batches on the user\'s own uchroot cache and apt cache, as they '
                             'are; by default each batch without a warm cache gets a new, empty one '
                             'in WORK (the unpacked tarball, and squid\'s cache beside it)')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--skip-reference', action='store_true',
                       help='do not run the reference: use WORK/reference/run.json of an earlier '
                            'run, else the verdicts of the packages file')
    which.add_argument('--skip-batch', action='store_true', help='run the reference only')
    args = parser.parse_args()
    args.options = args.options or OPTIONS
    if os.geteuid() != 0:
        sys.exit('run this as root: autopkgtest-virt-unshare and uchroot batch test as root here')
    if not args.skip_batch and not os.access(args.uchroot, os.X_OK):
        sys.exit('%s not found: build it first (mvn -q -DskipTests package)' % args.uchroot)
    tarball = os.path.abspath(args.tarball or default_tarball())
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    args.interfaces = counted_interfaces()

    packages = read_packages(args.packages)
    jobs = make_jobs(packages, args.count)
    dscs = fetch_sources(packages, os.path.join(work, 'src'))
    key = {'tarball': tarball, 'tarball_size': os.path.getsize(tarball), 'jobs': args.jobs,
           'options': args.options, 'ids': [j['id'] for j in jobs],
           'dscs': [os.path.basename(dscs[j['name']]) for j in jobs]}

    reference_file = os.path.join(work, 'reference', 'run.json')
    if not args.skip_reference:
        print('reference: %d jobs, xargs -P%d autopkgtest ... -- unshare (logs in %s)' % (
            len(jobs), args.jobs, os.path.join(work, 'reference')), flush=True)
        try:
            reference = run_reference(jobs, dscs, tarball, args.jobs, args.options,
                                       os.path.join(work, 'reference'), args.interfaces)
        except RuntimeError as e:
            print('reference: %s' % e, file=sys.stderr)
            sys.exit(3)
        reference['key'] = key
        reference['when'] = datetime.datetime.now().isoformat(timespec='seconds')
        with open(reference_file, 'w') as f:
            json.dump(reference, f, indent=1)
        origin = 'run now (%s)' % reference['when']
        recorded = {j['id']: {'status': None, 'tests': dict(j['verdicts'])} for j in jobs}
        recorded_differences = compare(recorded, reference['jobs'])
    else:
        reference, recorded_differences = None, None
        try:
            with open(reference_file) as f:
                earlier = json.load(f)
            if earlier.get('key') == key:
                reference = earlier
                origin = 'the run of %s in %s' % (earlier['when'], reference_file)
        except (OSError, ValueError):
            pass
        if reference is None:
            reference = {'wall': None, 'received': None,
                         'jobs': {j['id']: {'status': None, 'tests': dict(j['verdicts']),
                                            'duration': None} for j in jobs}}
            origin = 'verdicts recorded in %s (no wall time or bytes)' % args.packages

    batches = []
    if not args.skip_batch:
        plan = os.path.join(work, 'plan.yaml')
        write_plan(plan, jobs, dscs, tarball, args.jobs, args.options)
        # Without --user-cache: the run without the apt cache and the first with it each start
        # from empty caches (they unpack the tarball, as each reference job does); the later runs
        # with the apt cache find the first one's caches warm.
        runs = [('batch, no apt cache', 'batch-no-apt-cache', False, 'cache-no-apt-cache')] + [
            ('batch, apt cache, run %d' % i, 'batch-apt-cache-%d' % i, True, 'cache-apt-cache')
            for i in range(1, args.cache_runs + 1)]
        if not args.user_cache:
            blocked = unreachable_by_others(os.path.join(work, 'cache'))
            if blocked:
                print('warning: %s is closed to other users: squid (its own user) cannot keep its '
                      'cache in WORK, and the batch runs without one; choose another --work'
                      % blocked, file=sys.stderr)
            for cache in ('cache-no-apt-cache', 'cache-apt-cache'):
                for d in (cache, cache + '-apt'):
                    shutil.rmtree(os.path.join(work, d), ignore_errors=True)
        warm_up(args.uchroot, os.path.join(work, 'doctor.log'))
        for name, directory, apt_cache, cache in runs:
            print('%s (results in %s)' % (name, os.path.join(work, directory)), flush=True)
            try:
                run = run_batch(args.uchroot, plan, args.jobs, os.path.join(work, directory),
                                apt_cache, args.interfaces, os.path.join(work, directory + '.log'),
                                None if args.user_cache else os.path.join(work, cache))
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print('%s: %s' % (name, e), file=sys.stderr)
                sys.exit(3)
            run['apt_cache'] = apt_cache
            run['differences'] = compare(reference['jobs'], run['jobs'])
            batches.append((name, run))
        with open(os.path.join(work, 'batch-runs.json'), 'w') as f:
            json.dump(dict(batches), f, indent=1)

    failed = report(args, tarball, jobs, reference, origin, batches, recorded_differences)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
