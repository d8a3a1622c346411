/** The sandbox reads the catalog's (and obligations') Kubernetes quantities with the one shared parser. */
export { cpuMillis, memoryBytes } from '../../../shared/resource-quantity.js';
