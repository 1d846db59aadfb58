/** Field validators the wire messages share (`messages.ts`, `secagg-messages.ts`). */
import { z } from 'zod';

export const uint32 = z.int().min(0).max(0xffff_ffff);
export const positiveInt = z.int().min(1);
/** Agent ids appear in token files (`<agent-id> <token>`) and logs: no spaces. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const agentId = z.string().regex(AGENT_ID_PATTERN);
