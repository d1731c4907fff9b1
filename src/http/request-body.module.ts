import { Global, Module } from '@nestjs/common';
import { RefusedBodies } from './refused-bodies.js';

/** What the body guard and the exception filter share about request bodies, one instance for the app. */
@Global()
@Module({ providers: [RefusedBodies], exports: [RefusedBodies] })
export class RequestBodyModule {}
