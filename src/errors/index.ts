export { InterceptError } from './intercept-error.js';
export { ValidationError } from './validation-error.js';
export { CommandFailedError } from './command-failed-error.js';
export { DriftError } from './drift-error.js';
export { NativeError } from './native-error.js';
export { CommandTimedOutError } from './command-timed-out-error.js';
export { valueText } from './value-text.js';
