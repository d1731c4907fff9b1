import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { APP_CONFIG } from './config/config.module.js';
import { serveOnlyWhatTheUiLoads } from './openapi-ui-files.js';
import { RoomBatchesModule } from './rooms/batches/room-batches.module.js';
import { RoomsModule } from './rooms/rooms.module.js';
import type { ZegoSettings } from './zego/zego.settings.js';

/** The security scheme POST /rooms names in @ApiBearerAuth. */
export const API_KEY_SECURITY_SCHEME = 'api-key';
export const DOCS_PATH = 'docs';
export const DOCS_JSON_PATH = 'docs-json';

/**
 * Serves the OpenAPI document of the client API: the UI at GET /docs (with only the files it
 * loads), the JSON at GET /docs-json.
 * It is assembled here, where the application is wired, because it joins the documented modules
 * (rooms, room batches) with the deployment's settings (zego); the http module stays below the features.
 * Neither needs an API key. The document says what this deployment enforces (the attribute
 * maximum, whether fromUserId may be left out) and holds no configuration value beyond that.
 */
export function setUpOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('zim-room-gateway')
    .setDescription(
      'Creates ZEGOCLOUD ZIM chat rooms for internal services, without them holding the ZEGOCLOUD ' +
        "ServerSecret. The body is checked against the vendor's rules before any vendor call; every " +
        'error has one shape (ErrorBodyDto) and every response carries X-Request-Id.',
    )
    .setVersion(packageVersion())
    // addSecurity, not addBearerAuth: that one claims bearerFormat JWT, and our keys are opaque.
    .addSecurity(API_KEY_SECURITY_SCHEME, {
      type: 'http',
      scheme: 'bearer',
      description: "the client's API key",
    })
    .addTag('rooms', 'ZIM rooms')
    .addTag('room batches', 'Many rooms created in the background, durable in Redis, reported per room')
    .build();
  const document = SwaggerModule.createDocument(app, config, { include: [RoomsModule, RoomBatchesModule] });
  describeDeployment(document, app.get<DeploymentConfig>(APP_CONFIG));
  serveOnlyWhatTheUiLoads(app, DOCS_PATH);
  SwaggerModule.setup(DOCS_PATH, app, document, {
    jsonDocumentUrl: DOCS_JSON_PATH,
    raw: ['json'],
    customSiteTitle: 'zim-room-gateway API',
  });
  return document;
}

/** What the request schemas cannot say statically: rules that follow from the configuration. */
type DeploymentConfig = { readonly zego: ZegoSettings };

function describeDeployment(document: OpenAPIObject, config: DeploymentConfig): void {
  const schemas = document.components?.schemas ?? {};
  // Unknown fields are refused (forbidNonWhitelisted), also inside an attribute.
  for (const name of ['CreateRoomDto', 'RoomAttributeDto', 'CreateRoomBatchDto']) {
    const schema = schemas[name];
    if (schema && !('$ref' in schema)) schema.additionalProperties = false;
  }
  const createRoom = schemas.CreateRoomDto;
  if (!createRoom || '$ref' in createRoom) return;
  const attributes = createRoom.properties?.attributes;
  if (attributes && !('$ref' in attributes)) attributes.maxItems = config.zego.maxRoomAttributes;
  if (config.zego.defaultFromUserId === undefined) {
    createRoom.required = [...new Set([...(createRoom.required ?? []), 'fromUserId'])];
  }
}

/** package.json sits one level above this file both in src and in dist. */
function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof manifest.version === 'string' ? manifest.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
