#ifndef PAREDAO_CRABBITMQ_SHIM_H
#define PAREDAO_CRABBITMQ_SHIM_H

// <sys/time.h> must come first: <amqp.h> only forward-declares struct timeval.
#include <sys/time.h>
#include <stdio.h>
#include <string.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_framing.h>

// Outcomes of paredao_amqp_wait_confirm and paredao_amqp_consume.
enum {
    PAREDAO_AMQP_TIMEOUT = 0,
    PAREDAO_AMQP_ACK = 1,
    PAREDAO_AMQP_NACK = 2,
    PAREDAO_AMQP_DELIVERY = 3,
    PAREDAO_AMQP_RETURNED = 4,
    PAREDAO_AMQP_BLOCKED = 5,
    PAREDAO_AMQP_UNBLOCKED = 6,
    PAREDAO_AMQP_CLOSED = -1000,
};

static inline struct timeval paredao_timeval(long long micros) {
    struct timeval tv;
    tv.tv_sec = (time_t)(micros / 1000000);
    tv.tv_usec = (suseconds_t)(micros % 1000000);
    return tv;
}

// amqp_login_with_properties is variadic, which Swift cannot call. The client announces the
// connection.blocked capability, so the broker tells it when a resource alarm blocks
// publishing instead of silently no longer reading its socket, and consumer_cancel_notify,
// so a consumer learns (basic.cancel) that its queue was deleted.
static inline amqp_rpc_reply_t paredao_amqp_login(amqp_connection_state_t state, const char *vhost,
                                                  int heartbeat_seconds, const char *user,
                                                  const char *password) {
    amqp_table_entry_t capabilities[2];
    capabilities[0].key = amqp_cstring_bytes("connection.blocked");
    capabilities[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    capabilities[0].value.value.boolean = 1;
    capabilities[1].key = amqp_cstring_bytes("consumer_cancel_notify");
    capabilities[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
    capabilities[1].value.value.boolean = 1;
    amqp_table_entry_t properties[1];
    properties[0].key = amqp_cstring_bytes("capabilities");
    properties[0].value.kind = AMQP_FIELD_KIND_TABLE;
    properties[0].value.value.table.num_entries = 2;
    properties[0].value.value.table.entries = capabilities;
    amqp_table_t client_properties;
    client_properties.num_entries = 1;
    client_properties.entries = properties;
    return amqp_login_with_properties(state, vhost, 0, 131072, heartbeat_seconds, &client_properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// Writes a readable description of a failed RPC reply into buffer.
static inline void paredao_amqp_describe_reply(amqp_rpc_reply_t reply, char *buffer, size_t size) {
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(buffer, size, "ok");
        return;
    case AMQP_RESPONSE_NONE:
        snprintf(buffer, size, "missing RPC reply");
        return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(buffer, size, "%s", amqp_error_string2(reply.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD && reply.reply.decoded) {
            amqp_connection_close_t *m = (amqp_connection_close_t *)reply.reply.decoded;
            snprintf(buffer, size, "connection closed by broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD && reply.reply.decoded) {
            amqp_channel_close_t *m = (amqp_channel_close_t *)reply.reply.decoded;
            snprintf(buffer, size, "channel closed by broker: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(buffer, size, "broker error, method 0x%08X", reply.reply.id);
        }
        return;
    }
    snprintf(buffer, size, "unknown reply type %d", (int)reply.reply_type);
}

// Declares a durable queue; quorum selects x-queue-type=quorum and a non-NULL
// dead_letter_queue routes rejected messages to that queue via the default exchange.
static inline amqp_queue_declare_ok_t *paredao_amqp_declare_queue(
    amqp_connection_state_t state, amqp_channel_t channel, const char *name, int passive,
    int quorum, const char *dead_letter_queue) {
    amqp_table_entry_t entries[3];
    int count = 0;
    if (quorum) {
        entries[count].key = amqp_cstring_bytes("x-queue-type");
        entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[count].value.value.bytes = amqp_cstring_bytes("quorum");
        count++;
    }
    if (dead_letter_queue) {
        entries[count].key = amqp_cstring_bytes("x-dead-letter-exchange");
        entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[count].value.value.bytes = amqp_cstring_bytes("");
        count++;
        entries[count].key = amqp_cstring_bytes("x-dead-letter-routing-key");
        entries[count].value.kind = AMQP_FIELD_KIND_UTF8;
        entries[count].value.value.bytes = amqp_cstring_bytes(dead_letter_queue);
        count++;
    }
    amqp_table_t arguments;
    arguments.num_entries = count;
    arguments.entries = count ? entries : NULL;
    return amqp_queue_declare(state, channel, amqp_cstring_bytes(name), passive ? 1 : 0,
                              passive ? 0 : 1, 0, 0, passive ? amqp_empty_table : arguments);
}

// Publishes a persistent, mandatory message to the default exchange, with its delivery tag
// in message_id: a basic.return carries the properties back, so the returned message is
// known by its tag (the broker sends the return before the ack of the same message).
static inline int paredao_amqp_publish(amqp_connection_state_t state, amqp_channel_t channel,
                                       const char *routing_key, uint64_t tag, const void *body,
                                       size_t length) {
    char message_id[24];
    int id_length = snprintf(message_id, sizeof(message_id), "%llu", (unsigned long long)tag);
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.content_type = amqp_cstring_bytes("application/x-paredao-votes");
    props.message_id.len = (size_t)id_length;
    props.message_id.bytes = message_id;
    amqp_bytes_t bytes;
    bytes.len = length;
    bytes.bytes = (void *)body;
    return amqp_basic_publish(state, channel, amqp_cstring_bytes(""),
                              amqp_cstring_bytes(routing_key), 1, 0, &props, bytes);
}

// Reads the content of a basic.return and fills tag from its message_id; 0 when absent.
static inline int paredao_amqp_read_return(amqp_connection_state_t state, amqp_channel_t channel,
                                           uint64_t *tag) {
    amqp_message_t message;
    amqp_rpc_reply_t reply = amqp_read_message(state, channel, &message, 0);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        return reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? reply.library_error
                                                                   : PAREDAO_AMQP_CLOSED;
    }
    *tag = 0;
    if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        for (size_t i = 0; i < message.properties.message_id.len; i++) {
            char digit = ((const char *)message.properties.message_id.bytes)[i];
            if (digit < '0' || digit > '9') { *tag = 0; break; }
            *tag = *tag * 10 + (uint64_t)(digit - '0');
        }
    }
    amqp_destroy_message(&message);
    return PAREDAO_AMQP_RETURNED;
}

// Waits up to timeout_us for one frame a publisher cares about (a zero timeout also sends a
// due heartbeat and notices a missed one: librabbitmq does both only inside its waits).
// Returns PAREDAO_AMQP_ACK/NACK (filling tag and multiple), PAREDAO_AMQP_RETURNED (filling
// tag), PAREDAO_AMQP_BLOCKED/UNBLOCKED, PAREDAO_AMQP_TIMEOUT, PAREDAO_AMQP_CLOSED when the
// broker closed the channel or connection, or a negative amqp_status_enum (a missed
// heartbeat is AMQP_STATUS_HEARTBEAT_TIMEOUT).
static inline int paredao_amqp_wait_confirm(amqp_connection_state_t state, long long timeout_us,
                                            uint64_t *tag, int *multiple) {
    // Every decoded frame lives in the connection's frame pool until the pool is released:
    // without this, each confirm's frame stays allocated and the publisher's memory grows
    // with every message (~33 bytes a vote, measured). The previous frame was read in full
    // (its fields copied out) by the time the caller asks for the next one.
    amqp_maybe_release_buffers(state);
    amqp_frame_t frame;
    struct timeval tv = paredao_timeval(timeout_us);
    int status = amqp_simple_wait_frame_noblock(state, &frame, timeout_us < 0 ? NULL : &tv);
    if (status == AMQP_STATUS_TIMEOUT) return PAREDAO_AMQP_TIMEOUT;
    if (status != AMQP_STATUS_OK) return status;
    if (frame.frame_type != AMQP_FRAME_METHOD) return PAREDAO_AMQP_TIMEOUT;
    switch (frame.payload.method.id) {
    case AMQP_BASIC_ACK_METHOD: {
        amqp_basic_ack_t *ack = (amqp_basic_ack_t *)frame.payload.method.decoded;
        *tag = ack->delivery_tag;
        *multiple = ack->multiple;
        return PAREDAO_AMQP_ACK;
    }
    case AMQP_BASIC_NACK_METHOD: {
        amqp_basic_nack_t *nack = (amqp_basic_nack_t *)frame.payload.method.decoded;
        *tag = nack->delivery_tag;
        *multiple = nack->multiple;
        return PAREDAO_AMQP_NACK;
    }
    case AMQP_BASIC_RETURN_METHOD:
        return paredao_amqp_read_return(state, frame.channel, tag);
    case AMQP_CONNECTION_BLOCKED_METHOD:
        return PAREDAO_AMQP_BLOCKED;
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
        return PAREDAO_AMQP_UNBLOCKED;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
        return PAREDAO_AMQP_CLOSED;
    default:
        return PAREDAO_AMQP_TIMEOUT;
    }
}

// Waits up to timeout_us for one delivery. Returns PAREDAO_AMQP_DELIVERY (the caller
// must amqp_destroy_envelope), PAREDAO_AMQP_TIMEOUT, PAREDAO_AMQP_CLOSED, or a negative
// amqp_status_enum.
static inline int paredao_amqp_consume(amqp_connection_state_t state, long long timeout_us,
                                       amqp_envelope_t *envelope) {
    amqp_maybe_release_buffers(state);
    struct timeval tv = paredao_timeval(timeout_us);
    amqp_rpc_reply_t reply = amqp_consume_message(state, envelope, timeout_us < 0 ? NULL : &tv, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) return PAREDAO_AMQP_DELIVERY;
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        if (reply.library_error == AMQP_STATUS_TIMEOUT) return PAREDAO_AMQP_TIMEOUT;
        if (reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            // A non-delivery frame arrived: a close from the broker, a cancel (the queue was
            // deleted: the caller reconnects and declares it again), or something to skip.
            amqp_frame_t frame;
            struct timeval zero = paredao_timeval(0);
            int status = amqp_simple_wait_frame_noblock(state, &frame, &zero);
            if (status == AMQP_STATUS_TIMEOUT) return PAREDAO_AMQP_TIMEOUT;
            if (status != AMQP_STATUS_OK) return status;
            if (frame.frame_type == AMQP_FRAME_METHOD &&
                (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                 frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ||
                 frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD)) {
                return PAREDAO_AMQP_CLOSED;
            }
            return PAREDAO_AMQP_TIMEOUT;
        }
        return reply.library_error;
    }
    return PAREDAO_AMQP_CLOSED;
}

#endif
