import { describe, expect, it } from 'vitest';
import { addRecent, kindOf, MAX_RECENT, parseRecent, recentLabel } from '../../src/main/electron/recent';
import { isMenuCommand, MAX_FILE_TEXT, validateOpen, validateSave } from '../../src/shared/files-api';

describe('Electron file IPC validation (main checks every renderer request)', () => {
  it('open requests carry no arguments', () => {
    expect(validateOpen([])).toBeNull();
    expect(validateOpen(['/etc/passwd'])).toMatch(/no arguments/);
    expect(validateOpen(undefined)).toMatch(/no arguments/);
  });

  it('save requests carry text and a plain file name, never a path', () => {
    expect(validateSave(['{}', 'h6.socsession.json'])).toEqual({ text: '{}', name: 'h6.socsession.json' });
    expect(validateSave(['{}', 'my session 2.json'])).toEqual({ text: '{}', name: 'my session 2.json' });
    for (const name of ['../x.json', '/tmp/x.json', 'a\\b.json', 'C:x.json', '..', '', 'x'.repeat(256), 7, null]) {
      expect(validateSave(['{}', name])).toMatch(/argument 2/);
    }
    expect(validateSave([42, 'a.json'])).toMatch(/argument 1/);
    expect(validateSave(['x'.repeat(MAX_FILE_TEXT + 1), 'a.json'])).toMatch(/argument 1/);
    expect(validateSave(['{}'])).toMatch(/2 arguments/);
    expect(validateSave('{}')).toMatch(/2 arguments/);
  });

  it('the renderer accepts only well-formed menu commands', () => {
    expect(isMenuCommand({ command: 'save-session' })).toBe(true);
    expect(isMenuCommand({ command: 'open-session', file: { name: 'a.socsession.json', text: '{}' } })).toBe(true);
    expect(isMenuCommand({ command: 'open-session', file: { name: 'a', text: 3 } })).toBe(false);
    expect(isMenuCommand({ command: 'rm -rf' })).toBe(false);
    expect(isMenuCommand(null)).toBe(false);
  });
});

describe('the recent files list', () => {
  it('puts the newest first, once, and keeps at most MAX_RECENT', () => {
    let list = addRecent([], '/w/a.soc.json');
    list = addRecent(list, '/w/b.socsession.json');
    list = addRecent(list, '/w/a.soc.json');
    expect(list).toEqual([
      { path: '/w/a.soc.json', kind: 'config' },
      { path: '/w/b.socsession.json', kind: 'session' },
    ]);
    for (let i = 0; i < 20; i++) list = addRecent(list, `/w/${i}.json`);
    expect(list).toHaveLength(MAX_RECENT);
    expect(list[0]!.path).toBe('/w/19.json');
  });

  it('reads the stored list defensively', () => {
    expect(parseRecent('not json')).toEqual([]);
    expect(parseRecent('{"path":"/a"}')).toEqual([]);
    expect(parseRecent(JSON.stringify([{ path: '/w/s.socsession.json', kind: 'config' }, { path: 'relative.json' }, { path: 5 }, null, { path: '/w/s.socsession.json' }]))).toEqual([
      { path: '/w/s.socsession.json', kind: 'session' },
    ]);
    expect(kindOf('/w/x.json')).toBe('config');
    expect(recentLabel({ path: '/w/dir/x.soc.json', kind: 'config' })).toBe('x.soc.json — /w/dir');
  });
});
