/** The console's keyboard shortcuts, as the help popover (?) lists them; App.vue's onKey implements them. */
export const SHORTCUTS: { keys: string; what: string }[] = [
  { keys: 'Ctrl+Enter', what: 'Run the script' },
  { keys: 'Esc / Ctrl+.', what: 'Stop the running script; else leave the replay' },
  { keys: 'Ctrl+S', what: 'Save the session (config, script, layout)' },
  { keys: 'F10', what: 'Replay: next step' },
  { keys: 'Shift+F10', what: 'Replay: previous step' },
  { keys: 'Ctrl+F10', what: 'Replay: run to the end' },
  { keys: 'F5 / Ctrl+R', what: 'Refresh the views' },
  { keys: 'Alt+1 … Alt+7', what: 'Registers, Memory, Page tables, TLB, Timeline, Findings, Config' },
  { keys: '?', what: 'This help (outside the editors)' },
];
