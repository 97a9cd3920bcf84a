/**
 * The Cap'n Proto encoding, as far as authkit needs it (docs/proksi-external-auth.md §6): one
 * import for its three parts, the stream framing (framing.ts), the reader that follows pointers
 * under a traversal limit (message-reader.ts) and the single-segment writer (message-builder.ts).
 * rpc.ts and schema.ts build on it.
 */
export { encodeFrame, FrameReader, MAX_FRAME_BYTES, MAX_SEGMENTS } from './framing.js';
export { MessageReader, StructReader } from './message-reader.js';
export { MessageBuilder, StructBuilder } from './message-builder.js';
