/**
 * Package entry point (`import { CidrTrie } from 'interpose'`). The native pieces load the
 * addon on first use, so importing this module never needs a compiler.
 */
export {
  CidrTrie,
  originalDst,
  originalDstLookup,
  setTransparent,
  setMark,
  socketFd,
  type OriginalDestination,
} from './native.js';
export {
  InterceptError,
  ValidationError,
  CommandFailedError,
  DriftError,
  NativeError,
} from './errors/index.js';
