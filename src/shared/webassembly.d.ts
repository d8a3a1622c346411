// The subset of the WebAssembly JS API the embedded policy engine uses. The project compiles with lib ES2022
// (no DOM) and @types/node 20, neither of which declares the global `WebAssembly` that Node provides.
declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: BufferSource);
    static exports(module: Module): { name: string; kind: string }[];
  }
  class Global {
    value: unknown;
  }
  type ExportValue = ((...args: number[]) => number) | Memory | Global;
  type Exports = Record<string, ExportValue>;
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Exports;
  }
  type ImportValue = ((...args: number[]) => unknown) | Memory;
  type Imports = Record<string, Record<string, ImportValue>>;
  interface WebAssemblyInstantiatedSource {
    module: Module;
    instance: Instance;
  }
  type BufferSource = ArrayBufferView | ArrayBuffer;
  function compile(bytes: BufferSource): Promise<Module>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
}
