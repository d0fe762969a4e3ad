#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
static size_t w(char*d,size_t s,size_t n,void*a){(void)d;(void)a;return s*n;}
int main(void){CURL*e=curl_easy_init();curl_easy_setopt(e,CURLOPT_URL,"https://127.0.0.1:44667/ok");
curl_easy_setopt(e,CURLOPT_CAINFO,"/tmp/c.pem");curl_easy_setopt(e,CURLOPT_CERTINFO,1L);curl_easy_setopt(e,CURLOPT_WRITEFUNCTION,w);
printf("rc %d\n",curl_easy_perform(e)); struct curl_certinfo*ci=NULL; curl_easy_getinfo(e,CURLINFO_CERTINFO,&ci);
for(int i=0;i<ci->num_of_certs;i++) for(struct curl_slist*f=ci->certinfo[i];f;f=f->next) if(strstr(f->data,"date")) printf("[%d] %s\n",i,f->data);}
