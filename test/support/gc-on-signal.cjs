// Test instrument, preloaded into a process under measurement (node --expose-gc --require <this file>):
// SIGUSR2 runs full garbage collections, so a test reads the live size, not garbage not yet collected.
// Several, with turns of the event loop between: one collection leaves behind what only its weak callbacks
// and finalizers release (closed sockets' buffers, for one), and V8 subtracts freed Buffer memory from its
// external-memory count only when the background ArrayBuffer sweep is finalized, at the next collection.
'use strict';
if (typeof global.gc === 'function') {
  const CYCLES = 4;
  process.on('SIGUSR2', () => {
    let left = CYCLES;
    const cycle = () => {
      global.gc();
      if (--left > 0) setTimeout(cycle, 50);
    };
    cycle();
  });
}
