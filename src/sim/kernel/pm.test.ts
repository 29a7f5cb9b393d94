import { describe, expect, it } from 'vitest';
import { Clock } from '../core/clock';
import { runOp, type Op } from '../core/coop';
import { FindingLog } from '../core/findings';
import { Trace } from '../core/trace';
import { EACCES, EAGAIN, EIO, ENOSYS } from './errno';
import { RuntimePm, type RuntimePmOps } from './pm';

function rig() {
  const clock = new Clock();
  const trace = new Trace();
  const findings = new FindingLog(() => clock.now(), () => undefined);
  const pm = new RuntimePm({ clock, trace, findings, cyclesPerMs: 1000 });
  const log: string[] = [];
  const cb = (name: string, fail?: { resume?: number }): RuntimePmOps => ({
    *runtimeResume(): Op<number> {
      yield { kind: 'mmio-write' };
      log.push(`${name}:resume`);
      return fail?.resume ?? 0;
    },
    *runtimeSuspend(): Op<number> {
      yield { kind: 'mmio-write' };
      log.push(`${name}:suspend`);
      return 0;
    },
  });
  const add = (name: string, fail?: { resume?: number }) => {
    pm.addDevice(name, cb(name, fail));
    pm.enable(name);
  };
  const run = <T>(op: Op<T>): T => {
    const v = runOp(op);
    runOp(pm.runWork());
    return v;
  };
  return { clock, trace, findings, pm, log, add, run };
}

describe('runtime PM', () => {
  it('get_sync resumes, put suspends asynchronously, put_sync at once', () => {
    const { pm, log, add } = rig();
    add('dev');
    expect(pm.status('dev')).toBe('suspended');
    expect(runOp(pm.getSync('dev'))).toBe(0);
    expect(pm.status('dev')).toBe('active');
    expect(runOp(pm.getSync('dev'))).toBe(1);
    expect(pm.state('dev').usage).toBe(2);
    expect(runOp(pm.put('dev'))).toBe(0);
    expect(runOp(pm.put('dev'))).toBe(0);
    expect(pm.status('dev')).toBe('active');
    expect(pm.hasWork()).toBe(true);
    runOp(pm.runWork());
    expect(pm.status('dev')).toBe('suspended');
    runOp(pm.getSync('dev'));
    expect(runOp(pm.putSync('dev'))).toBe(0);
    expect(pm.status('dev')).toBe('suspended');
    expect(log).toEqual(['dev:resume', 'dev:suspend', 'dev:resume', 'dev:suspend']);
  });

  it('traces every status transition', () => {
    const { pm, trace, add, run } = rig();
    add('dev');
    run(pm.getSync('dev'));
    run(pm.put('dev'));
    const t = trace.events().filter((e) => e.name === 'rpm_status').map((e) => `${e.args!.from}->${e.args!.to}`);
    expect(t).toEqual(['suspended->resuming', 'resuming->active', 'active->suspending', 'suspending->suspended']);
  });

  it('disabled runtime PM: get_sync -EACCES; usage underflow warns', () => {
    const { pm, findings } = rig();
    pm.addDevice('d');
    expect(runOp(pm.getSync('d'))).toBe(-EACCES);
    expect(pm.state('d').usage).toBe(1);
    pm.enable('d');
    // The idle check on a device that is not active says -EAGAIN, as rpm_idle does.
    expect(runOp(pm.put('d'))).toBe(-EAGAIN);
    expect(runOp(pm.put('d'))).toBeLessThan(0);
    expect(findings.take().some((f) => f.message.includes('underflow'))).toBe(true);
  });

  it('device link: the supplier resumes before the consumer and suspends after it', () => {
    const { pm, log, add, run } = rig();
    add('iommu');
    add('vpu');
    expect(run(pm.linkAdd('vpu', 'iommu', ['stateless', 'pm-runtime']))).not.toBeNull();
    run(pm.getSync('vpu'));
    expect(pm.status('iommu')).toBe('active');
    expect(pm.state('iommu').usage).toBe(1);
    // The supplier cannot suspend while its consumer is active.
    expect(run(pm.suspend('iommu'))).toBe(-EAGAIN);
    run(pm.put('vpu'));
    expect(pm.status('vpu')).toBe('suspended');
    expect(pm.status('iommu')).toBe('suspended');
    expect(log).toEqual(['iommu:resume', 'vpu:resume', 'vpu:suspend', 'iommu:suspend']);
  });

  it('the supplier suspends only when all its consumers are suspended', () => {
    const { pm, add, run } = rig();
    add('iommu');
    add('a');
    add('b');
    run(pm.linkAdd('a', 'iommu', ['pm-runtime']));
    run(pm.linkAdd('b', 'iommu', ['pm-runtime']));
    run(pm.getSync('a'));
    run(pm.getSync('b'));
    run(pm.put('a'));
    expect(pm.status('iommu')).toBe('active');
    run(pm.put('b'));
    expect(pm.status('iommu')).toBe('suspended');
  });

  it('without a link the IOMMU is not resumed for its master', () => {
    const { pm, add, run } = rig();
    add('iommu');
    add('vpu');
    run(pm.getSync('vpu'));
    expect(pm.status('iommu')).toBe('suspended');
  });

  it('a link added while the consumer is active takes no reference (rpm-active does)', () => {
    const { pm, add, run, log } = rig();
    add('iommu');
    add('vpu');
    run(pm.getSync('vpu'));
    run(pm.linkAdd('vpu', 'iommu', ['pm-runtime']));
    expect(pm.status('iommu')).toBe('suspended');
    run(pm.linkDel('vpu', 'iommu'));
    // rpm-active: resumed at creation, held until the consumer's next suspend.
    run(pm.linkAdd('vpu', 'iommu', ['pm-runtime', 'rpm-active']));
    expect(pm.status('iommu')).toBe('active');
    expect(pm.deviceLinks()[0]!.rpmActive).toBe(2);
    run(pm.put('vpu'));
    expect(pm.status('vpu')).toBe('suspended');
    expect(pm.status('iommu')).toBe('suspended');
    expect(log.slice(-2)).toEqual(['vpu:suspend', 'iommu:suspend']);
  });

  it('a failing supplier resume fails the consumer resume and drops the references', () => {
    const { pm, add, run, log } = rig();
    add('iommu', { resume: -EIO });
    add('vpu');
    run(pm.linkAdd('vpu', 'iommu', ['pm-runtime']));
    expect(run(pm.getSync('vpu'))).toBe(-EIO);
    expect(pm.status('vpu')).toBe('suspended');
    expect(pm.state('iommu').usage).toBe(0);
    expect(log).toEqual(['iommu:resume']);
  });

  it('links that would form a cycle are refused', () => {
    const { pm, add, run } = rig();
    add('a');
    add('b');
    expect(run(pm.linkAdd('a', 'b', ['pm-runtime']))).not.toBeNull();
    expect(run(pm.linkAdd('b', 'a', ['pm-runtime']))).toBeNull();
    expect(run(pm.linkAdd('a', 'a', []))).toBeNull();
  });

  it('power/control = on keeps the device active; auto lets it suspend', () => {
    const { pm, add, run } = rig();
    add('dev');
    run(pm.setControl('dev', 'on'));
    expect(pm.control('dev')).toBe('on');
    expect(pm.status('dev')).toBe('active');
    run(pm.getSync('dev'));
    run(pm.putSync('dev'));
    expect(pm.status('dev')).toBe('active');
    expect(pm.state('dev').usage).toBe(1);
    run(pm.setControl('dev', 'auto'));
    expect(pm.status('dev')).toBe('suspended');
  });

  it('CONFIG_PM=n: always active, callbacks never run, stub return values', () => {
    const { pm, add, run, log } = rig();
    add('iommu');
    add('vpu');
    pm.setEnabled(false);
    run(pm.linkAdd('vpu', 'iommu', ['pm-runtime', 'rpm-active']));
    expect(run(pm.getSync('vpu'))).toBe(1);
    expect(run(pm.put('vpu'))).toBe(-ENOSYS);
    expect(pm.getIfInUse('vpu')).toBeLessThan(0);
    expect(pm.status('vpu')).toBe('active');
    expect(pm.status('iommu')).toBe('active');
    expect(pm.isActive('iommu')).toBe(true);
    expect(log).toEqual([]);
  });

  it('get_if_in_use: only when active and already in use', () => {
    const { pm, add, run } = rig();
    add('dev');
    expect(pm.getIfInUse('dev')).toBe(0);
    run(pm.getSync('dev'));
    expect(pm.getIfInUse('dev')).toBe(1);
    expect(pm.state('dev').usage).toBe(2);
    expect(pm.getIfActive('dev')).toBe(1);
  });

  it('autosuspend waits for last_busy + delay on the simulated clock', () => {
    const { pm, add, run, clock, log } = rig();
    add('dev');
    run(pm.useAutosuspend('dev', true));
    run(pm.setAutosuspendDelay('dev', 10));
    run(pm.getSync('dev'));
    pm.markLastBusy('dev');
    run(pm.putAutosuspend('dev'));
    expect(pm.status('dev')).toBe('active');
    clock.advance(9_000);
    expect(pm.status('dev')).toBe('active');
    clock.advance(2_000);
    expect(pm.status('dev')).toBe('suspended');
    expect(log).toEqual(['dev:resume', 'dev:suspend']);
  });

  it('a negative autosuspend delay prevents runtime suspend', () => {
    const { pm, add, run } = rig();
    add('dev');
    run(pm.useAutosuspend('dev', true));
    run(pm.setAutosuspendDelay('dev', -1));
    expect(pm.status('dev')).toBe('active');
    run(pm.getSync('dev'));
    run(pm.putSync('dev'));
    expect(pm.status('dev')).toBe('active');
    run(pm.setAutosuspendDelay('dev', 0));
    expect(pm.status('dev')).toBe('suspended');
  });

  it('a second thread finding the device resuming waits for the first', () => {
    const { pm, add } = rig();
    add('dev');
    const a = pm.getSync('dev');
    const b = pm.getSync('dev');
    // a runs into its resume callback (status resuming) and is preempted there.
    a.next();
    expect(pm.status('dev')).toBe('resuming');
    let rb = b.next();
    expect(rb.done).toBe(false);
    let ra = a.next();
    while (!ra.done) ra = a.next();
    while (!rb.done) rb = b.next();
    expect(ra.value).toBe(0);
    expect(rb.value).toBe(1);
    expect(pm.state('dev').usage).toBe(2);
  });
});
