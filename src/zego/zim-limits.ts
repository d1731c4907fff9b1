/**
 * The vendor's documented limits for room requests (see shared/reference). Kept in one place so
 * validation, configuration and documentation cannot drift apart.
 */
export const ZIM_LIMITS = {
  /** FromUserId and RoomId: 1..32 characters from this set (the CreateRoom page's list). */
  idPattern: /^[A-Za-z0-9!#$%&()+\-:;<=.>?@[\]^_ ,{]{1,32}$/,
  idMaxLength: 32,
  idAllowedDescription:
    "1-32 characters from A-Z a-z 0-9 and ! # $ % & ( ) + - : ; < = . > ? @ [ ] ^ _ space , {",
  roomNameMaxBytes: 64,
  destroyDelayTimeMaxSeconds: 10800,
  defaultMaxAttributes: 20,
  attributeKeyMaxBytes: 16,
  attributeValueMaxBytes: 1024,
  attributesTotalMaxBytes: 5120,
} as const;
