// Test instrument, preloaded into a process under measurement (node --expose-gc --require <this file>):
// SIGUSR2 runs a full garbage collection, so a test reads the heap's live size, not garbage not yet collected.
'use strict';
if (typeof global.gc === 'function') process.on('SIGUSR2', () => global.gc());
